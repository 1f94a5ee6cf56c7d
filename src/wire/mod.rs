//! The JSON wire layer: one document read from a request body into a serde type, and
//! what every reader of such bodies shares. It knows JSON and serde only; the shapes
//! read (an AdmissionReview, a pod) belong to their readers. [`from_slice`] is the one
//! way a body is read: a bound on nesting (the scan in `depth.rs`), then sonic-rs for a
//! UTF-8 body whose escapes are all JSON's and serde_json for any other.

mod depth;
pub mod out;
#[cfg(test)]
pub(crate) mod tests;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use depth::nests_deeper_than;

/// Deepest nesting of arrays and objects accepted anywhere in a body. Real objects stay
/// near 20.
pub const MAX_DEPTH: usize = 128;

/// Reads one JSON document from `body` as `T`: strict JSON (trailing characters
/// refused), nested at most [`MAX_DEPTH`] deep. sonic-rs reads it when the whole body is
/// UTF-8 (every body the apiserver sends: Go's encoder writes nothing else); a body with
/// invalid bytes is read by serde_json, which refuses them only in the fields it reads
/// (sonic-rs would refuse them anywhere; see SECURITY.md). sonic-rs does not check the
/// four hex digits of a `\u` escape in a string it skips, so a body with a bad escape
/// goes to serde_json too, which refuses it. Both bound the depth of what they read but
/// skip unknown values without a bound, so the depth is checked first.
pub fn from_slice<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    if nests_deeper_than(body, MAX_DEPTH) {
        return Err(serde::de::Error::custom(format!(
            "body nests deeper than {MAX_DEPTH} levels"
        )));
    }
    match std::str::from_utf8(body) {
        Ok(text) if escapes_are_json(body) => {
            sonic_rs::from_str(text).map_err(serde::de::Error::custom)
        }
        _ => serde_json::from_slice(body),
    }
}

/// Whether every backslash of `body` starts one of JSON's escapes (`\u` with four hex
/// digits). In valid JSON every backslash is inside a string, so this is exactly the
/// escape grammar; elsewhere the reader refuses the body anyway.
fn escapes_are_json(body: &[u8]) -> bool {
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'\\', &body[at..]) {
        let escape = at + found + 1;
        at = match body.get(escape) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => escape + 1,
            Some(b'u')
                if body
                    .get(escape + 1..escape + 5)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) =>
            {
                escape + 5
            }
            _ => return false,
        };
    }
    true
}

/// An optional string, borrowed from the body when it has no escapes (serde's own
/// `Option<Cow<str>>` always copies).
pub fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'a>>::deserialize(d)?.map(|t| t.0))
}
