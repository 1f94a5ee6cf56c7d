//! The wire layer's own tests: the depth scan against a `serde_json::Value` walk. That
//! sonic-rs and serde_json read our types alike is tested where the types are
//! (`object`).

use proptest::prelude::*;
use serde_json::Value;

use super::depth::{nests_deeper_than, scan_deeper_than};

/// Any JSON value, nested up to six levels.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// The depth scan agrees with a `serde_json::Value` walk on any JSON.
    #[test]
    fn depth_is_the_value_depth(v in json_value()) {
        fn depth(v: &Value) -> usize {
            match v {
                Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
                Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        let d = depth(&v);
        let text = serde_json::to_vec(&v).unwrap();
        for deeper_than in [nests_deeper_than, scan_deeper_than] {
            prop_assert!(!deeper_than(&text, d));
            prop_assert_eq!(deeper_than(&text, d.saturating_sub(1)), d > 0);
        }
    }
}

#[test]
fn from_slice_bounds_the_depth_of_what_it_skips() {
    use serde::de::IgnoredAny;
    let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
    assert!(super::from_slice::<IgnoredAny>(nested(super::MAX_DEPTH).as_bytes()).is_ok());
    let err = super::from_slice::<IgnoredAny>(nested(super::MAX_DEPTH + 1).as_bytes());
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("nests deeper than 128"),
        "refused before it is read"
    );
    // A body that is not UTF-8 is read by serde_json, which skips the bad bytes.
    assert!(super::from_slice::<IgnoredAny>(b"[\"\xff\"]").is_ok());
    assert!(
        super::from_slice::<IgnoredAny>(b"[] x").is_err(),
        "trailing characters"
    );
}

#[test]
fn text_borrows_unless_escaped() {
    #[derive(serde::Deserialize)]
    struct T<'a> {
        #[serde(default, borrow, deserialize_with = "super::text")]
        s: Option<std::borrow::Cow<'a, str>>,
    }
    let read = |body: &'static str| super::from_slice::<T<'_>>(body.as_bytes()).unwrap().s;
    assert!(matches!(
        read(r#"{"s":"ab"}"#),
        Some(std::borrow::Cow::Borrowed("ab"))
    ));
    assert!(matches!(read(r#"{"s":"a\u0062"}"#), Some(std::borrow::Cow::Owned(s)) if s == "ab"));
    assert!(read(r#"{"s":null}"#).is_none());
    assert!(read("{}").is_none());
}

/// sonic-rs alone would skip a `\u` escape without its four hex digits; the body then
/// goes to serde_json, which refuses it wherever it is.
#[test]
fn a_bad_escape_in_a_skipped_string_is_refused() {
    #[derive(Debug, serde::Deserialize)]
    struct Read {
        #[allow(dead_code)]
        a: String,
    }
    for body in [
        r#"{"a":"x","b":{"k\u[004":1}}"#,
        r#"{"a":"x","b":"\u12"}"#,
        r#"{"a":"x","b":"\x"}"#,
        r#"{"a":"x","b":"\"#,
    ] {
        let read = super::from_slice::<Read>(body.as_bytes());
        assert!(read.is_err(), "{body} was read: {read:?}");
    }
    for body in [
        r#"{"a":"x","b":"\u00e9\\\"\/\b\f\n\r\t"}"#,
        r#"{"a":"x","b":{"k\\u[004":1}}"#,
    ] {
        assert!(super::from_slice::<Read>(body.as_bytes()).is_ok(), "{body}");
    }
}
