//! JSON written by hand for the two documents sent per review: the AdmissionReview
//! response and the audit line. serde's generic serialisation of them (through kube's
//! `AdmissionResponse`) was about 7 % of the server's CPU under load, and serde derive on
//! borrowed structs written with `serde_json::to_writer` still cost a 10 KiB review 3 %
//! more instructions and 4 % more time (it escapes every key; 4487df6, reverted). These
//! write the same bytes (strings escaped by serde_json, checked by tests) into one buffer.
//! [`clip`] cuts any text echoed back (in an answer, an audit line, a warning) to a bound.

use std::borrow::Cow;

/// Appends `s` as a JSON string, escaped by serde_json.
pub fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde::Serializer::serialize_str(&mut serde_json::Serializer::new(&mut *out), s);
}

/// An object being written: members are separated by commas as they come. Keys are
/// the writer's own constants, written without escaping.
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Object<'o> {
    pub fn new(out: &'o mut Vec<u8>) -> Object<'o> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `"key":` and hands back the buffer for the value.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        debug_assert!(!key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        string(self.key(key), value);
        self
    }

    /// A string, or `null` for `None`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => string(self.key(key), v),
            None => self.key(key).extend_from_slice(b"null"),
        }
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
        self
    }

    pub fn u64(&mut self, key: &str, value: u64) -> &mut Self {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(self.key(key), "{value}");
        self
    }

    /// A nested object, written by `fill`.
    pub fn object(&mut self, key: &str, fill: impl FnOnce(&mut Object<'_>)) -> &mut Self {
        let mut inner = Object::new(self.key(key));
        fill(&mut inner);
        inner.end();
        self
    }

    /// An array whose elements `element` writes.
    pub fn array<T>(
        &mut self,
        key: &str,
        items: impl IntoIterator<Item = T>,
        mut element: impl FnMut(&mut Vec<u8>, T),
    ) -> &mut Self {
        let out = self.key(key);
        out.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            element(out, item);
        }
        out.push(b']');
        self
    }

    /// An array of strings.
    pub fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.array(key, values, string)
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// `s`, or its longest prefix of at most `max - 3` bytes ending at a character
/// boundary followed by `…` (3 bytes), so never more than `max` bytes.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_nest_and_separate_members() {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        o.str("a", "x\"y")
            .opt_str("b", None)
            .bool("c", true)
            .u64("d", 42)
            .object("e", |e| {
                e.strs("f", ["1", "2"]);
            })
            .object("g", |_| {});
        o.end();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "x\"y", "b": null, "c": true, "d": 42, "e": {"f": ["1", "2"]}, "g": {}})
        );
    }
}
