use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::wire::tests::json_value;

/// An object with `known` fields (when drawn) among other fields of any JSON.
fn with_fields(
    known: Vec<(&'static str, Option<Value>)>,
    extra: std::collections::BTreeMap<String, Value>,
) -> Value {
    let mut m: serde_json::Map<String, Value> = extra
        .into_iter()
        .filter(|(k, _)| !known.iter().any(|(n, _)| n == k))
        .collect();
    for (name, value) in known {
        if let Some(value) = value {
            m.insert(name.into(), value);
        }
    }
    Value::Object(m)
}

fn extra() -> impl Strategy<Value = std::collections::BTreeMap<String, Value>> {
    prop::collection::btree_map("[a-zA-Z]{1,10}", json_value(), 0..4)
}

fn text() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![any::<String>(), "[a-z./:@0-9-]{0,30}"].prop_map(Value::from))
}

/// A container, or an image volume: maybe a name, maybe an image.
fn container() -> impl Strategy<Value = Value> {
    (text(), text(), extra())
        .prop_map(|(name, image, extra)| with_fields(vec![("name", name), ("image", image)], extra))
}

fn volume() -> impl Strategy<Value = Value> {
    let image = prop::option::of(
        (text(), extra()).prop_map(|(r, extra)| with_fields(vec![("reference", r)], extra)),
    );
    (text(), image, extra())
        .prop_map(|(name, image, extra)| with_fields(vec![("name", name), ("image", image)], extra))
}

/// A pod with container lists and volumes among other fields of any JSON.
fn pod() -> impl Strategy<Value = Value> {
    let list = || prop::option::of(prop::collection::vec(container(), 0..4).prop_map(Value::Array));
    let volumes = prop::option::of(prop::collection::vec(volume(), 0..3).prop_map(Value::Array));
    (list(), list(), list(), volumes, extra(), extra()).prop_map(
        |(containers, init, ephemeral, volumes, spec_extra, top_extra)| {
            let spec = with_fields(
                vec![
                    ("containers", containers),
                    ("initContainers", init),
                    ("ephemeralContainers", ephemeral),
                    ("volumes", volumes),
                ],
                spec_extra,
            );
            let mut top = with_fields(vec![("spec", Some(spec))], top_extra);
            top.as_object_mut()
                .unwrap()
                .retain(|k, _| k != "metadata" && k != "template");
            top
        },
    )
}

/// The images of a pod found by walking a `serde_json::Value`.
fn images_by_value(pod: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let text = |v: &Value, f: &str| v[f].as_str().unwrap_or_default().to_string();
    for (key, location) in [
        ("containers", "container"),
        ("initContainers", "init container"),
        ("ephemeralContainers", "ephemeral container"),
    ] {
        for c in pod["spec"][key].as_array().into_iter().flatten() {
            out.push((location.to_string(), text(c, "name"), text(c, "image")));
        }
    }
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if v["image"].is_object() {
            out.push((
                "image volume".into(),
                text(v, "name"),
                text(&v["image"], "reference"),
            ));
        }
    }
    out
}

/// The same JSON with every character outside ASCII written as `\u` escapes.
fn ascii_escaped(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_ascii() {
            true => c.to_string(),
            false => {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect()
}

/// Pieces the differential test writes into a valid text.
const EDITS: [&str; 22] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    " ",
    "\t",
    "\u{1}",
    "\\ud800",
    "\\udc00\\ud800",
    "\\u0041",
    "1e999",
    "-0",
    "01",
    "null",
    "true",
    "\"image\":\"x\",",
    "\"spec\":{},",
    "\u{feff}",
];

/// Each kind is named by its group and by its stable `apiVersion` alike, and is
/// written (serialised and displayed) as its Kubernetes kind name.
#[test]
fn kinds_map_from_groups_and_api_versions() {
    for k in Kind::ALL {
        assert_eq!(Kind::from_group_kind(k.group(), k.as_str()), Some(k));
        assert_eq!(Kind::from_api_version(k.api_version(), k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.to_string());
    }
    assert_eq!(
        Kind::from_group_kind("apps", "Deployment"),
        Some(Kind::Deployment)
    );
    assert_eq!(Kind::from_group_kind("", "Deployment"), None);
    assert_eq!(
        Kind::from_api_version("extensions/v1beta1", "Deployment"),
        None
    );
    assert_eq!(Kind::from_api_version("v1", "Service"), None);
    assert_eq!(Kind::from_api_version("/v1", "Pod"), None);
    assert_eq!(Kind::from_api_version("x/apps/v1", "Deployment"), None);
    assert_eq!(serde_json::to_value(Kind::CronJob).unwrap(), "CronJob");
}

proptest! {
    /// The images read by our types are those a `serde_json::Value` walk finds,
    /// whatever other fields surround them, escaped or not.
    #[test]
    fn reads_the_images_a_value_walk_finds(pod in pod()) {
        let expected = images_by_value(&pod);
        let compact = serde_json::to_string(&pod).unwrap();
        for text in [compact.clone(), serde_json::to_string_pretty(&pod).unwrap(), ascii_escaped(&compact)] {
            let object = Object::parse(&text).unwrap();
            let read: Vec<(String, String, String)> = object
                .images(Kind::Pod)
                .iter()
                .map(|u| (u.location.to_string(), u.name.to_string(), u.image.to_string()))
                .collect();
            prop_assert_eq!(&read, &expected);
        }
    }

    /// The reader of UTF-8 bodies (`wire::from_slice`: sonic-rs unless an escape is
    /// bad) and serde_json (which reads the others) read any text alike: the same
    /// object, or both refuse it. The edits
    /// make most texts invalid JSON, or a lone surrogate, a number out of range, a
    /// duplicated key, a control character in a string.
    #[test]
    fn sonic_rs_and_serde_json_read_alike(
        pod in pod(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(EDITS.to_vec()), any::<bool>()),
            0..4,
        ),
    ) {
        let mut text = serde_json::to_string(&pod).unwrap();
        for (at, piece, insert) in edits {
            let at = at.index(text.len() + 1);
            if !text.is_char_boundary(at) {
                continue;
            }
            if !insert {
                // Replace what follows with the piece, as far as it reaches.
                let end = (at + piece.len()).min(text.len());
                if !text.is_char_boundary(end) {
                    continue;
                }
                text.replace_range(at..end, "");
            }
            text.insert_str(at, piece);
        }
        let sonic = crate::wire::from_slice::<Object>(text.as_bytes()).map(|o| format!("{o:?}"));
        let serde = serde_json::from_str::<Object>(&text).map(|o| format!("{o:?}"));
        match (&sonic, &serde) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{text}: sonic-rs {sonic:?}, serde_json {serde:?}"),
        }
    }
}
