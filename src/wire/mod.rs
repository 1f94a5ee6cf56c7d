//! The JSON wire layer: one document read from a request body into a serde type, and
//! what every reader of such bodies shares. It knows JSON and serde only; the shapes
//! read (an AdmissionReview, a pod) belong to their readers. [`from_slice`] is the one
//! way a body is read: a bound on nesting (the scan in `depth.rs`), then sonic-rs for a
//! UTF-8 body and serde_json for any other.

mod depth;
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
/// (sonic-rs would refuse them anywhere; see SECURITY.md). Both bound the depth of what
/// they read but skip unknown values without a bound, so the depth is checked first.
pub fn from_slice<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    if nests_deeper_than(body, MAX_DEPTH) {
        return Err(serde::de::Error::custom(format!(
            "body nests deeper than {MAX_DEPTH} levels"
        )));
    }
    match std::str::from_utf8(body) {
        Ok(text) => sonic_rs::from_str(text).map_err(serde::de::Error::custom),
        Err(_) => serde_json::from_slice(body),
    }
}

/// An optional string, borrowed from the body when it has no escapes (serde's own
/// `Option<Cow<str>>` always copies).
pub fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'a>>::deserialize(d)?.map(|t| t.0))
}
