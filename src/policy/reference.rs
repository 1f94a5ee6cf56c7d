//! TEMPORARY crude stand-in; replaced by the real parser.
use std::fmt;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    domain: String,
    host_key: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}
impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, InvalidReference> {
        if s.is_empty() || s.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(InvalidReference("bad".into()));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (s, None),
        };
        let (name, tag) = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => (&name[..i], Some(name[i + 1..].to_string())),
            _ => (name, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((d, p))
                if d.contains('.')
                    || d.contains(':')
                    || d == "localhost"
                    || d.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (d.to_string(), p.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io".to_string()
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.split('/').any(|c| {
            c.is_empty()
                || c.contains("..")
                || c.chars().any(|c| c.is_ascii_uppercase() || c == '%')
        }) {
            return Err(InvalidReference("bad path".into()));
        }
        if domain.ends_with('.') {
            return Err(InvalidReference("bad host".into()));
        }
        Ok(ImageRef {
            host_key: domain.to_ascii_lowercase(),
            domain,
            path,
            tag,
            digest,
        })
    }
    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn host_key(&self) -> &str {
        &self.host_key
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}
impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidReference(String);
impl InvalidReference {
    pub fn reason(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for InvalidReference {}
