//! Registry URLs and host spellings, and the lower-case `host[:port]` keys that image
//! references are matched against.

use std::fmt;

/// Docker Hub's host spellings: one registry whichever is written.
pub const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// A registry's `spec.url`, checked and split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryUrl {
    pub https: bool,
    /// Lower-case host; IPv6 in brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl RegistryUrl {
    pub fn default_port(&self) -> u16 {
        if self.https {
            443
        } else {
            80
        }
    }

    /// The base URL to call the registry's API at.
    pub fn base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(p) => format!("{scheme}://{}:{p}", self.host),
            None => format!("{scheme}://{}", self.host),
        }
    }

    /// Every key an image host may take to reach `host[:port]` of this registry: the
    /// default port of the scheme is the same as no port.
    pub fn keys_for(&self, host: &str, port: Option<u16>) -> Vec<String> {
        let host = host.to_ascii_lowercase();
        match port {
            Some(p) if p != self.default_port() => vec![format!("{host}:{p}")],
            _ => vec![format!("{host}:{}", self.default_port()), host],
        }
    }

    /// Keys of the URL itself and of its aliases, and all of Docker Hub's spellings when
    /// any of them is Docker Hub.
    pub fn all_keys(&self, aliases: &[(String, Option<u16>)]) -> Vec<String> {
        let mut spellings = vec![(self.host.clone(), self.port)];
        spellings.extend(aliases.iter().cloned());
        if spellings
            .iter()
            .any(|(h, _)| DOCKER_HUB_HOSTS.contains(&h.as_str()))
        {
            spellings.extend(DOCKER_HUB_HOSTS.iter().map(|h| (h.to_string(), None)));
        }
        let mut keys: Vec<String> = spellings
            .iter()
            .flat_map(|(h, p)| self.keys_for(h, *p))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

impl fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())
    }
}

/// Parses `spec.url`: scheme http or https, a host, an optional port, no path.
pub fn parse_registry_url(url: &str) -> Result<RegistryUrl, String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("url {url:?} must start with https:// or http://"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "url {url:?} must be scheme://host[:port] with no path, query or user"
        ));
    }
    let (host, port) = parse_host_port(rest)?;
    Ok(RegistryUrl { https, host, port })
}

/// Parses `host[:port]` (IPv6 in brackets) into a lower-case host and a port.
pub fn parse_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("{s:?} is not a valid host[:port]");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let inner = &rest[..end];
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        (
            &s[..end + 2],
            rest[end + 1..]
                .strip_prefix(':')
                .map(Some)
                .unwrap_or_else(|| {
                    if rest[end + 1..].is_empty() {
                        None
                    } else {
                        Some("")
                    }
                }),
        )
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.starts_with('[') && !host.split('.').all(valid_label) {
        return Err(bad());
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?)
        }
        Some(_) => return Err(bad()),
    };
    Ok((host.to_ascii_lowercase(), port))
}
