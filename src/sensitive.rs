//! Reading objects that may hold credentials: no error message may echo a Secret's value. Every deserialisation and every
//! decode of such an object — a v1 Secret in an input file, the `.dockerconfigjson` or
//! basic-auth keys pullgate reads out of a Secret — goes through [`Sensitive`], whose
//! [`Redacted`] errors name the object and the field path (`stringData.password`,
//! `data[".dockerconfigjson"].auths["host"].auth`) and say what was expected and what
//! kind of value was found, but never carry the value or any character of it.
//!
//! The guarantee is structural: deserialisation runs through [`ValueDe`], a serde
//! deserializer over a JSON value whose error type keeps only the *kind* of what was
//! found (`an integer`, `a string`) and the text the target type wrote for what it
//! expected; custom messages (a base64 decoder's "invalid symbol … at offset …") are
//! dropped whole. Map keys do appear in paths: they are field names, not values.

use std::fmt;

use base64::Engine as _;
use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;

use crate::input::{escape, join_path, key_segment};

/// An object that may hold credentials, as messages name it: kind and namespace/name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensitive {
    kind: String,
    namespace: String,
    name: String,
}

/// Why a field of a [`Sensitive`] object cannot be read. Holds no input text other
/// than the object's identity and field names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {problem} (the value is not shown)")]
pub struct Redacted {
    object: String,
    field: String,
    problem: String,
}

impl Redacted {
    /// The field path, e.g. `stringData.password`.
    pub fn field(&self) -> &str {
        &self.field
    }
    /// What is wrong, without the value (`expected a string, found an integer`).
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl Sensitive {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Sensitive {
        Sensitive {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The identity of a raw object (`kind`, `metadata.namespace`, `metadata.name`,
    /// where they are strings), before it is known to deserialise.
    pub fn of_value(v: &Value) -> Sensitive {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
        Sensitive::new(s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
    }

    /// The same object, seen from inside one of its fields: errors of the returned
    /// wrapper put `field` before their own path.
    pub fn at(&self, field: &str) -> Located<'_> {
        Located {
            object: self,
            field: field.to_string(),
        }
    }

    fn error(&self, field: String, problem: impl Into<String>) -> Redacted {
        Redacted {
            object: self.to_string(),
            field,
            problem: problem.into(),
        }
    }

    /// Deserialises the whole object.
    pub fn from_value<T: DeserializeOwned>(&self, v: &Value) -> Result<T, Redacted> {
        self.at("").from_value(v)
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "(no name)".to_string()
        } else if self.namespace.is_empty() {
            escape(&self.name).into_owned()
        } else {
            format!("{}/{}", escape(&self.namespace), escape(&self.name))
        };
        let kind = if self.kind.is_empty() {
            "object"
        } else {
            &self.kind
        };
        write!(f, "{} {name}", escape(kind))
    }
}

/// A field of a [`Sensitive`] object: the reads below name it in their errors.
pub struct Located<'a> {
    object: &'a Sensitive,
    field: String,
}

impl<'a> Located<'a> {
    /// A field one level down: `.key` for a plain name, `["key"]` otherwise.
    pub fn key(&self, key: &str) -> Located<'a> {
        Located {
            object: self.object,
            field: join_path(&self.field, &key_segment(key)),
        }
    }

    /// An error about this field with a fixed description.
    pub fn error(&self, problem: impl Into<String>) -> Redacted {
        self.object.error(self.field.clone(), problem)
    }

    /// Deserialises this field's value.
    pub fn from_value<T: DeserializeOwned>(&self, v: &Value) -> Result<T, Redacted> {
        serde_path_to_error::deserialize(ValueDe(v)).map_err(|e| {
            let mut field = self.field.clone();
            for segment in e.path().iter() {
                let s = match segment {
                    serde_path_to_error::Segment::Seq { index } => format!("[{index}]"),
                    serde_path_to_error::Segment::Map { key } => key_segment(key),
                    serde_path_to_error::Segment::Enum { variant } => key_segment(variant),
                    serde_path_to_error::Segment::Unknown => ".?".to_string(),
                };
                field = join_path(&field, &s);
            }
            self.object.error(field, e.into_inner().0)
        })
    }

    /// Parses this field's bytes as JSON, then deserialises them. A syntax error says
    /// where it is (line and column), never what is there.
    pub fn from_json<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, Redacted> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            self.error(format!(
                "not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        self.from_value(&v)
    }

    /// Decodes this field's standard base64.
    pub fn base64(&self, text: &str) -> Result<Vec<u8>, Redacted> {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| self.error("not base64"))
    }

    /// This field's bytes as UTF-8 text.
    pub fn utf8(&self, bytes: Vec<u8>) -> Result<String, Redacted> {
        String::from_utf8(bytes).map_err(|_| self.error("not UTF-8 text"))
    }
}

/// The error of [`ValueDe`]: a description built only from what serde reports about the
/// target type; whatever it reports about the input is reduced to its kind.
#[derive(Debug)]
pub struct Problem(String);

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Problem {}

/// The kind of an unexpected input, without its payload.
fn found(u: &Unexpected<'_>) -> &'static str {
    match u {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a number",
        Unexpected::Char(_) => "a character",
        Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "null",
        Unexpected::Option => "an optional value",
        Unexpected::NewtypeStruct => "a newtype struct",
        Unexpected::Seq => "a list",
        Unexpected::Map => "a mapping",
        Unexpected::Enum => "an enum",
        Unexpected::UnitVariant
        | Unexpected::NewtypeVariant
        | Unexpected::TupleVariant
        | Unexpected::StructVariant => "an enum variant",
        Unexpected::Other(_) => "another value",
    }
}

impl de::Error for Problem {
    /// Custom messages are written by the target type and may quote the input (a base64
    /// decoder names the offending character): none of it is kept.
    fn custom<T: fmt::Display>(_msg: T) -> Problem {
        Problem("invalid value".into())
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Problem {
        Problem(format!("expected {exp}, found {}", found(&unexp)))
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Problem {
        Problem(format!(
            "invalid value: expected {exp}, found {}",
            found(&unexp)
        ))
    }
    fn invalid_length(_len: usize, exp: &dyn de::Expected) -> Problem {
        Problem(format!("wrong length, expected {exp}"))
    }
    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Problem {
        Problem(format!("unknown variant, expected one of {expected:?}"))
    }
    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Problem {
        Problem(format!("unknown field, expected one of {expected:?}"))
    }
    fn missing_field(field: &'static str) -> Problem {
        Problem(format!("missing field {field:?}"))
    }
    fn duplicate_field(field: &'static str) -> Problem {
        Problem(format!("duplicate field {field:?}"))
    }
}

/// A serde deserializer over a borrowed JSON value whose error is a [`Problem`]. The
/// containers are serde's own value deserializers, so only the leaves live here.
#[derive(Clone, Copy)]
pub struct ValueDe<'a>(pub &'a Value);

impl<'de> IntoDeserializer<'de, Problem> for ValueDe<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> ValueDe<'de> {
    fn map(
        m: &'de serde_json::Map<String, Value>,
    ) -> MapDeserializer<'de, impl Iterator<Item = (&'de str, ValueDe<'de>)>, Problem> {
        MapDeserializer::new(m.iter().map(|(k, v)| (k.as_str(), ValueDe(v))))
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = Problem;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.iter().map(ValueDe));
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(m) => {
                let mut map = ValueDe::map(m);
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Problem> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Problem> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Object(m) if m.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(ValueDe::map(m)))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use serde_json::json;

    const VALUE: &str = "hunter2-Qz9";

    fn secret_error(v: Value) -> String {
        let s = Sensitive::of_value(&v);
        s.from_value::<Secret>(&v).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_object_and_field_but_not_the_value() {
        let meta = json!({"name": "creds", "namespace": "ops"});
        let cases = [
            (
                json!({"kind": "Secret", "metadata": meta, "stringData": {"password": 123_456_789}}),
                "Secret ops/creds: stringData.password: expected a string, found an integer",
            ),
            (
                json!({"kind": "Secret", "metadata": meta, "stringData": {"password": 3.25}}),
                "Secret ops/creds: stringData.password: expected a string, found a number",
            ),
            (
                json!({"kind": "Secret", "metadata": meta, "data": {"password": format!("{VALUE}!")}}),
                "Secret ops/creds: data.password: invalid value",
            ),
            (
                json!({"kind": "Secret", "metadata": meta, "data": {".dockerconfigjson": [VALUE]}}),
                "Secret ops/creds: data[\".dockerconfigjson\"]: expected a base64-encoded string, found a list",
            ),
            (
                json!({"kind": "Secret", "metadata": meta, "immutable": VALUE}),
                "Secret ops/creds: immutable: expected a boolean, found a string",
            ),
        ];
        for (v, want) in cases {
            let got = secret_error(v);
            assert!(got.starts_with(want), "{got}");
            assert!(got.ends_with("(the value is not shown)"), "{got}");
            for leak in [VALUE, "123456789", "3.25", "symbol", "offset"] {
                assert!(!got.contains(leak), "{leak} in {got}");
            }
        }
    }

    #[test]
    fn a_valid_secret_reads_as_serde_json_reads_it() {
        let v = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "a", "labels": {"x": "y"}, "creationTimestamp": "2024-01-02T03:04:05Z"},
            "type": "kubernetes.io/basic-auth", "immutable": true,
            "data": {"username": "dXNlcg=="}, "stringData": {"password": "p"}});
        let ours: Secret = Sensitive::of_value(&v).from_value(&v).unwrap();
        let theirs: Secret = serde_json::from_value(v).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn decodes_name_their_field() {
        let s = Sensitive::new("Secret", "ns", "dcj");
        let at = s.at("data").key(".dockerconfigjson").key("auths");
        let host = at.key("harbor.example.com:443");
        let e = host.key("auth").base64("%%%").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Secret ns/dcj: data[\".dockerconfigjson\"].auths[\"harbor.example.com:443\"].auth: not base64 (the value is not shown)"
        );
        let e = s
            .at("data")
            .key(".dockerconfigjson")
            .from_json::<Value>(format!("{{\"auths\": {VALUE}}}").as_bytes())
            .unwrap_err();
        assert!(!e.to_string().contains(VALUE), "{e}");
        assert!(e.to_string().contains("not valid JSON (line 1"), "{e}");
    }
}
