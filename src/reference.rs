//! Container image references, parsed and normalised the way the container runtime does
//! (Docker's `distribution/reference` grammar and normalisation; README, "Decision rules").
//!
//! Keeps [`ImageRef`] (domain, repository path, optional tag and digest) and
//! [`InvalidReference`] (why a string is not a reference). The one entry point is
//! [`ImageRef::parse`]; it is a hand-written scanner with a single allocation for a
//! valid reference, because it runs for every image of every admitted pod.
//!
//! ```
//! use pullgate::reference::ImageRef;
//!
//! let r = ImageRef::parse("nginx:1.25").expect("a valid reference");
//! assert_eq!((r.domain(), r.path(), r.tag()), ("docker.io", "library/nginx", Some("1.25")));
//! assert_eq!(r.to_string(), "docker.io/library/nginx:1.25");
//!
//! let r = ImageRef::parse("Harbor.Example.COM:443/team-a/app").expect("a valid reference");
//! assert_eq!((r.domain(), r.host_key()), ("Harbor.Example.COM:443", "harbor.example.com:443"));
//!
//! let e = ImageRef::parse("harbor.example.com/Team-A/app").unwrap_err();
//! assert_eq!(e.reason(), r#"path component "Team-A" has upper-case letters"#);
//! ```
//!
//! The rules, in the order they are checked:
//!
//! - The reference is not empty, has no leading or trailing whitespace, and contains
//!   printable ASCII only (no space, control character or non-ASCII character anywhere).
//! - It is not exactly 64 lower-case hex characters (that is an image ID, not a
//!   reference); `docker.io/<64 hex>` is a valid Docker Hub repository.
//! - The digest is everything after the first `@`; the tag is everything after the last
//!   `:` that follows the last `/` of what is left; the rest is the name. A tag and a
//!   digest may both be present: both are kept, the digest is what pins the image.
//! - The first component of the name is a domain only if a `/` follows it and it is
//!   `localhost`, or contains `.` or `:`, or has an upper-case letter (Go's
//!   `splitDockerDomain`); otherwise the domain is `docker.io` and the whole name is the
//!   path. `index.docker.io` becomes `docker.io`. When the domain is exactly `docker.io`
//!   and the path has one component, `library/` is put in front of it.
//!   `registry-1.docker.io` is left as written (the registry index treats it as one of
//!   Docker Hub's spellings), as is any other case of `docker.io` (`DOCKER.IO`).
//! - A domain is DNS labels `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]` joined by
//!   `.`, or an IPv6 address in brackets made of hex digits and `:` only (no zone, no
//!   embedded dotted IPv4), then optionally `:` and a port. Beyond Go's grammar, the port
//!   must be at most 65535 and have no leading zero, and an IPv6 address must be written
//!   in its shortest form (RFC 5952, any case): the runtime dials `:0443` as port 443 and
//!   `[fd00:0::5]` as `[fd00::5]`, spellings no registry would match. Likewise a host
//!   name whose every dot-separated part is a number as C's `inet_aton` reads them
//!   (decimal, octal after `0`, hex after `0x`) must be the dotted quad of 0 to 255 each:
//!   `167772165`, `0xa.0.0.5`, `10.0.0.05` and `127.1` are invalid (two spellings of one
//!   address must never be one integrated and one unmanaged host), as is such a
//!   host that is no address (`10.0.0.256`, `1.2.3.4.5`); see `read_numeric_host`. A
//!   first component taken as a domain that breaks this grammar makes the reference
//!   invalid, even where it would pass as a path component (`harbor_x.example.com/app`):
//!   Go's `ParseNormalizedNamed` accepts that as a name with an empty domain, which
//!   the rule that hosts follow the grammar rules out.
//! - Path components are `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, separated by single `/`.
//! - The whole normalised name (`domain/path`, including any inserted `library/`, as
//!   printed by `Display`) is at most 255 characters. Measuring the normalised form keeps
//!   `Display` output re-parseable (`nginx` and `docker.io/library/nginx` are the same
//!   name). Go's current code measures the normalised path alone, so a name whose path
//!   fits but whose `domain/path` does not is rejected here and accepted there.
//! - A tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
//! - A digest is `sha256:` and 64 lower-case hex characters, or `sha512:` and 128.
//!   Other algorithms (including `sha384`) and upper-case hex are rejected.

use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy domain, rewritten to [`DOCKER_HUB`] like the runtime does.
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Prefix of Docker Hub's official images (`nginx` is `library/nginx`).
const OFFICIAL_PREFIX: &str = "library/";
/// Longest normalised name (`domain/path`); the module doc says how Go's limit differs.
const NAME_MAX: usize = 255;
/// Longest tag the grammar allows.
const TAG_MAX: usize = 128;
/// Highest TCP port.
const PORT_MAX: u32 = 65_535;
/// Hex length of each supported digest algorithm.
const DIGEST_ALGORITHMS: [(&str, usize); 2] = [("sha256", 64), ("sha512", 128)];
/// Length of an image ID written as hex (rejected as a reference).
const IDENTIFIER_LEN: usize = 64;
/// How much of an input an error message quotes before cutting it short.
const QUOTE_MAX_CHARS: usize = 72;

/// Upper bound of [`ImageRef`]'s buffer: canonical name, `:tag`, `@sha512:…`, and a
/// lower-case copy of the domain (at most the whole name). It fits the `u16` offsets.
const BUF_MAX: usize = NAME_MAX + 1 + TAG_MAX + 1 + "sha512:".len() + 128 + NAME_MAX;
const _: () = assert!(BUF_MAX <= u16::MAX as usize);

/// A parsed, normalised image reference (Docker `distribution/reference` semantics).
///
/// Stored as one buffer holding the canonical form `domain/path[:tag][@digest]`,
/// followed by a lower-case copy of the domain only when the domain has upper case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    buf: Box<str>,
    /// End of the domain; the path starts one byte later (after the `/`).
    domain_end: u16,
    /// End of the path.
    path_end: u16,
    /// End of `:tag`; equal to `path_end` when there is no tag.
    tag_end: u16,
    /// End of `@digest` and of the canonical form; equal to `tag_end` when there is no
    /// digest. Anything after it is the lower-case host key.
    digest_end: u16,
}

impl ImageRef {
    /// Parses and normalises an image reference as the container runtime does.
    pub fn parse(s: &str) -> Result<ImageRef, InvalidReference> {
        let scan = Scan::of(s)?;
        if s.len() == IDENTIFIER_LEN && s.bytes().all(is_lower_hex) {
            return Err(InvalidReference::new(
                "a bare 64-hex identifier is not a reference (write docker.io/<hex> for a repository of that name)"
                    .to_owned(),
            ));
        }

        let digest = scan.at.map(|at| &s[at + 1..]);
        let name_tag_end = scan.at.unwrap_or(s.len());
        let tag = scan.tag_colon.map(|colon| &s[colon + 1..name_tag_end]);
        let name = &s[..scan.tag_colon.unwrap_or(name_tag_end)];
        if name.is_empty() {
            return Err(InvalidReference::new(format!(
                "missing repository name in {}",
                Quoted(s)
            )));
        }
        if name.starts_with('/') {
            return Err(InvalidReference::new(format!(
                "leading \"/\" in {}",
                Quoted(name)
            )));
        }
        if name.ends_with('/') {
            return Err(InvalidReference::new(format!(
                "trailing \"/\" in {}",
                Quoted(name)
            )));
        }

        // Go's `splitDockerDomain`: the first component is a domain only if a '/' follows
        // it and it is "localhost", or has '.', ':' or upper case.
        let (written_domain, path, path_has_slash) = match scan.first_slash {
            Some(i) if scan.first_component_hostlike || &name[..i] == "localhost" => {
                (Some(&name[..i]), &name[i + 1..], scan.slashes > 1)
            }
            _ => (None, name, scan.slashes > 0),
        };
        if let Some(domain) = written_domain {
            check_domain(domain).map_err(|e| {
                if name.contains("://") {
                    InvalidReference::new(format!(
                        "a reference has no URL scheme; start with the registry host: {}",
                        Quoted(s)
                    ))
                } else {
                    e
                }
            })?;
        }
        check_path(path)?;
        let domain = match written_domain {
            None | Some(DOCKER_HUB_LEGACY) => DOCKER_HUB,
            Some(domain) => domain,
        };
        let prefix = if domain == DOCKER_HUB && !path_has_slash {
            OFFICIAL_PREFIX
        } else {
            ""
        };
        let name_len = domain.len() + 1 + prefix.len() + path.len();
        if name_len > NAME_MAX {
            return Err(InvalidReference::new(format!(
                "repository name {} is {name_len} characters long once normalised, more than {NAME_MAX}",
                Quoted(name)
            )));
        }
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }

        let upper_domain = written_domain.is_some() && scan.first_component_upper;
        let len = name_len
            + tag.map_or(0, |t| 1 + t.len())
            + digest.map_or(0, |d| 1 + d.len())
            + if upper_domain { domain.len() } else { 0 };
        let mut buf = String::with_capacity(len);
        buf.push_str(domain);
        let domain_end = buf.len();
        buf.push('/');
        buf.push_str(prefix);
        buf.push_str(path);
        let path_end = buf.len();
        if let Some(tag) = tag {
            buf.push(':');
            buf.push_str(tag);
        }
        let tag_end = buf.len();
        if let Some(digest) = digest {
            buf.push('@');
            buf.push_str(digest);
        }
        let digest_end = buf.len();
        if upper_domain {
            buf.push_str(domain);
            buf[digest_end..].make_ascii_lowercase();
        }
        debug_assert!(buf.len() == len && len <= BUF_MAX);
        // The casts cannot truncate: every offset is at most BUF_MAX (checked above).
        Ok(ImageRef {
            buf: buf.into_boxed_str(),
            domain_end: domain_end as u16,
            path_end: path_end as u16,
            tag_end: tag_end as u16,
            digest_end: digest_end as u16,
        })
    }

    /// Registry host as the runtime uses it, after Docker's normalisation:
    /// `"docker.io"` for Docker Hub short forms and for `"index.docker.io"`; otherwise the
    /// first path component exactly as written (case kept, port kept), e.g. `"Foo"`,
    /// `"LOCALDOMAIN"`, `"127.0.0.1:5000"`, `"[fc00::1]:5000"`.
    pub fn domain(&self) -> &str {
        &self.buf[..usize::from(self.domain_end)]
    }

    /// The domain lower-cased (for case-insensitive registry matching); port kept.
    pub fn host_key(&self) -> &str {
        let canonical_end = usize::from(self.digest_end);
        if self.buf.len() > canonical_end {
            &self.buf[canonical_end..]
        } else {
            self.domain()
        }
    }

    /// Repository path after normalisation, e.g. `"library/nginx"`, `"team-a/sub/app"`.
    pub fn path(&self) -> &str {
        &self.buf[usize::from(self.domain_end) + 1..usize::from(self.path_end)]
    }

    /// The tag, if the reference has one (kept even when a digest is present).
    pub fn tag(&self) -> Option<&str> {
        (self.tag_end > self.path_end)
            .then(|| &self.buf[usize::from(self.path_end) + 1..usize::from(self.tag_end)])
    }

    /// The digest, e.g. `"sha256:<64 hex>"`, if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        (self.digest_end > self.tag_end)
            .then(|| &self.buf[usize::from(self.tag_end) + 1..usize::from(self.digest_end)])
    }
}

impl fmt::Display for ImageRef {
    /// The canonical form `domain/path[:tag][@digest]`, which parses back to an equal
    /// `ImageRef`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.buf[..usize::from(self.digest_end)])
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageRef")
            .field("domain", &self.domain())
            .field("path", &self.path())
            .field("tag", &self.tag())
            .field("digest", &self.digest())
            .finish()
    }
}

impl FromStr for ImageRef {
    type Err = InvalidReference;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidReference {
    reason: String,
}

impl InvalidReference {
    fn new(reason: String) -> Self {
        InvalidReference { reason }
    }

    /// A short lower-case phrase saying what is wrong, quoting the offending part.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for InvalidReference {}

/// What one pass over the whole input finds, so that later steps need no searching.
struct Scan {
    /// The first '@': the digest follows it.
    at: Option<usize>,
    /// The first '/' before the '@'.
    first_slash: Option<usize>,
    /// How many '/' come before the '@'.
    slashes: usize,
    /// The last ':' after the last '/' and before the '@': the tag follows it.
    tag_colon: Option<usize>,
    /// The text before the first '/' has '.', ':' or upper case.
    first_component_hostlike: bool,
    /// The text before the first '/' has upper case.
    first_component_upper: bool,
}

impl Scan {
    /// Scans `s`, rejecting an empty string and any character that is not printable ASCII.
    fn of(s: &str) -> Result<Scan, InvalidReference> {
        let mut scan = Scan {
            at: None,
            first_slash: None,
            slashes: 0,
            tag_colon: None,
            first_component_hostlike: false,
            first_component_upper: false,
        };
        if s.is_empty() {
            return Err(InvalidReference::new("empty reference".to_owned()));
        }
        let bytes = s.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if !is_printable_ascii(b) {
                return Err(not_printable_ascii(s, i));
            }
            match b {
                b'@' => {
                    scan.at = Some(i);
                    break;
                }
                b'/' => {
                    scan.first_slash.get_or_insert(i);
                    scan.slashes += 1;
                    scan.tag_colon = None;
                }
                b':' => {
                    scan.tag_colon = Some(i);
                    scan.first_component_hostlike |= scan.first_slash.is_none();
                }
                b'.' => scan.first_component_hostlike |= scan.first_slash.is_none(),
                b'A'..=b'Z' if scan.first_slash.is_none() => {
                    scan.first_component_hostlike = true;
                    scan.first_component_upper = true;
                }
                _ => {}
            }
        }
        if let Some(at) = scan.at {
            // After the '@' only the characters matter here; the digest is checked later.
            if let Some(j) = bytes[at + 1..].iter().position(|&b| !is_printable_ascii(b)) {
                return Err(not_printable_ascii(s, at + 1 + j));
            }
        }
        Ok(scan)
    }
}

/// The reason for a byte at `i` that is not printable ASCII (every earlier byte is).
#[cold]
fn not_printable_ascii(s: &str, i: usize) -> InvalidReference {
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return InvalidReference::new(format!("leading or trailing whitespace in {}", Quoted(s)));
    }
    // Every byte before `i` is ASCII, so `i` is a character boundary.
    let c = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
    InvalidReference::new(format!(
        "character U+{:04X} ({c:?}) is not allowed in a reference: {}",
        u32::from(c),
        Quoted(s)
    ))
}

/// Quotes part of the input with `{:?}` (so control and non-ASCII characters are escaped),
/// cut short after [`QUOTE_MAX_CHARS`] characters.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE_MAX_CHARS) {
            Some((cut, _)) => write!(f, "{:?}...", &self.0[..cut]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// Checks a registry host `host[:port]` as the first component of a reference may spell
/// it. The binding table refuses registry URLs and aliases that fail it: no
/// valid reference could ever match them.
pub fn check_host(domain: &str) -> Result<(), InvalidReference> {
    check_domain(domain)
}

/// Checks a domain: a host name or a bracketed IPv6 address, then an optional port.
fn check_domain(domain: &str) -> Result<(), InvalidReference> {
    let port = if let Some(inside) = domain.strip_prefix('[') {
        let Some((address, after)) = inside.split_once(']') else {
            return Err(InvalidReference::new(format!(
                "host {} has no closing \"]\"",
                Quoted(domain)
            )));
        };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(InvalidReference::new(format!(
                "host {} is not a valid IPv6 address: only hex digits and \":\" go in the brackets (no zone, no dotted IPv4)",
                Quoted(domain)
            )));
        }
        // One address, one spelling: the runtime dials `[fd00:0:0:0:0:0:0:5]` and
        // `[fd00::5]` alike, but only the shortest form (RFC 5952) can match a registry.
        match address.parse::<std::net::Ipv6Addr>() {
            Ok(ip) if ip.to_string() == address.to_ascii_lowercase() => {}
            Ok(ip) => {
                return Err(InvalidReference::new(format!(
                    "host {} is not in the shortest form of its IPv6 address, [{ip}]",
                    Quoted(domain)
                )))
            }
            Err(_) => {
                return Err(InvalidReference::new(format!(
                    "host {} is not a valid IPv6 address",
                    Quoted(domain)
                )))
            }
        }
        if after.is_empty() {
            None
        } else if let Some(port) = after.strip_prefix(':') {
            Some(port)
        } else {
            return Err(InvalidReference::new(format!(
                "host {} is not valid: only \":port\" may follow \"]\"",
                Quoted(domain)
            )));
        }
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        if !is_host_name(host.as_bytes()) {
            return Err(InvalidReference::new(format!(
                "host {} is not a valid host name",
                Quoted(domain)
            )));
        }
        match read_numeric_host(host) {
            NumericHost::Name | NumericHost::DottedQuad => {}
            NumericHost::OtherSpelling(ip) => {
                return Err(InvalidReference::new(format!(
                    "host {} is IPv4 address {ip} in another spelling; only \"{ip}\" is valid",
                    Quoted(domain)
                )))
            }
            NumericHost::NoAddress => {
                return Err(InvalidReference::new(format!(
                    "host {} is all numbers but no IPv4 address; only a dotted quad of 0 to 255 each is valid",
                    Quoted(domain)
                )))
            }
        }
        if port.is_some_and(|p| p.contains(':')) {
            return Err(InvalidReference::new(format!(
                "host {} has more than one \":\" (an IPv6 address goes in brackets, e.g. \"[fc00::1]:5000\")",
                Quoted(domain)
            )));
        }
        port
    };
    match port {
        None => Ok(()),
        Some("") => Err(InvalidReference::new(format!(
            "empty port in host {}",
            Quoted(domain)
        ))),
        Some(port) if !port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(InvalidReference::new(format!(
                "port {} of host {} is not a number",
                Quoted(port),
                Quoted(domain)
            )))
        }
        Some(port) => {
            let value = port.bytes().fold(0u32, |n, b| {
                n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
            });
            if value > PORT_MAX {
                Err(InvalidReference::new(format!(
                    "port {} of host {} is greater than {PORT_MAX}",
                    Quoted(port),
                    Quoted(domain)
                )))
            } else if port.len() > 1 && port.starts_with('0') {
                // The runtime dials ":0443" as port 443, but no registry spelling matches
                // it: with `--unmanaged allow` it would pass as an unmanaged host.
                Err(InvalidReference::new(format!(
                    "port {} of host {} has a leading zero",
                    Quoted(port),
                    Quoted(domain)
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// What C's `inet_aton` makes of a host name (see [`read_numeric_host`]).
#[derive(Debug, PartialEq, Eq)]
enum NumericHost {
    /// Some part is not a number: an ordinary host name.
    Name,
    /// The one spelling of an IPv4 address a reference may use: `10.0.0.5`.
    DottedQuad,
    /// Another spelling of this address: `167772165`, `0xa.0.0.5`, `10.0.0.05`, `10.5`.
    OtherSpelling(std::net::Ipv4Addr),
    /// Every part looks like a number, but together they are no address.
    NoAddress,
}

/// Reads a host name (no port) the way a C resolver does: `inet_aton` (glibc, musl, the
/// BSDs; `getaddrinfo` and `gethostbyname` take numeric hosts through it) accepts one to
/// four parts separated by `.`, each decimal, octal after a leading `0`, or hex after
/// `0x`/`0X`; every part but the last is one byte and the last fills the remaining bytes
/// (`127.1` is 127.0.0.1, `10.1.5` is 10.1.0.5, `167772165` is 10.0.0.5). The runtime
/// dials such a host as the address, but no registry spelling would match it, so with
/// `--unmanaged allow` it would pass as an unmanaged host: only the dotted quad is valid.
///
/// A host made of such numbers that is no address (a part out of range, more than four
/// parts, an octal `08`, a bare `0x`) is refused as well, as [`NumericHost::NoAddress`]:
/// resolvers disagree on it (older ones wrap an out-of-range value into an address,
/// others hand the name to DNS), and no registry is reachable by that name through DNS
/// (a top-level label is never all-numeric, RFC 3696 §2). So no host remains that one
/// reader takes for an address and another for a name, and nothing real is lost.
fn read_numeric_host(host: &str) -> NumericHost {
    let mut values = [0u32; 4];
    let mut count = 0;
    let mut in_range = true;
    let mut dotted_quad = true;
    for part in host.split('.') {
        let Some(value) = inet_aton_part(part.as_bytes()) else {
            return NumericHost::Name;
        };
        match (value, values.get_mut(count)) {
            (Some(v), Some(slot)) => *slot = v,
            _ => in_range = false,
        }
        // Decimal without a leading zero, as `Ipv4Addr` prints it.
        dotted_quad &= part.len() == 1 || !part.starts_with('0');
        count += 1;
    }
    if !in_range || count == 0 {
        return NumericHost::NoAddress;
    }
    let (leading, last) = values[..count].split_at(count - 1);
    let mut octets = [0u8; 4];
    for (octet, &v) in octets.iter_mut().zip(leading) {
        match u8::try_from(v) {
            Ok(b) => *octet = b,
            Err(_) => return NumericHost::NoAddress,
        }
    }
    // The last part fills the bytes the leading parts left, and must fit in them.
    let tail = last[0].to_be_bytes();
    if tail[..count - 1].iter().any(|&b| b != 0) {
        return NumericHost::NoAddress;
    }
    octets[count - 1..].copy_from_slice(&tail[count - 1..]);
    if count == 4 && dotted_quad {
        NumericHost::DottedQuad
    } else {
        NumericHost::OtherSpelling(std::net::Ipv4Addr::from(octets))
    }
}

/// One part of a host as `inet_aton` reads it: `None` when it is not a number in its
/// syntax; `Some(None)` when it looks like one but has no 32-bit value (an octal part with
/// 8 or 9, `0x` without digits, too many digits).
fn inet_aton_part(part: &[u8]) -> Option<Option<u32>> {
    let (digits, radix) = match part {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
        _ => (part, 10),
    };
    let numeric = if radix == 16 {
        digits.iter().all(u8::is_ascii_hexdigit)
    } else {
        !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
    };
    if !numeric {
        return None;
    }
    // ASCII digits only, so the conversion cannot fail; an empty hex part has no value.
    let text = std::str::from_utf8(digits).unwrap_or_default();
    Some(u32::from_str_radix(text, radix).ok())
}

/// Labels `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]` joined by single dots.
fn is_host_name(host: &[u8]) -> bool {
    // `previous` starts as if after a dot: a label must start with a letter or digit.
    let mut previous = b'.';
    for &c in host {
        let ok = match c {
            b'.' => previous != b'.' && previous != b'-',
            b'-' => previous != b'.',
            _ => c.is_ascii_alphanumeric(),
        };
        if !ok {
            return false;
        }
        previous = c;
    }
    previous != b'.' && previous != b'-'
}

/// Checks a path (no leading or trailing `/`): components separated by single `/`.
fn check_path(path: &str) -> Result<(), InvalidReference> {
    if is_path(path.as_bytes()) {
        return Ok(());
    }
    Err(path_error(path))
}

/// Names the first bad component of a path that [`is_path`] rejected.
#[cold]
fn path_error(path: &str) -> InvalidReference {
    let Some(component) = path.split('/').find(|c| !is_path(c.as_bytes())) else {
        return InvalidReference::new(format!("path {} is not valid", Quoted(path)));
    };
    InvalidReference::new(if component.is_empty() {
        format!("empty path component in {}", Quoted(path))
    } else if component.bytes().any(|b| b.is_ascii_uppercase()) {
        format!(
            "path component {} has upper-case letters",
            Quoted(component)
        )
    } else {
        format!(
            "path component {} must be lower-case letters and digits separated by \".\", \"_\", \"__\" or \"-\"",
            Quoted(component)
        )
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` components joined by single `/`, in one pass: a `/`
/// is one more separator that must be followed by a letter or digit.
fn is_path(p: &[u8]) -> bool {
    let mut i = 0;
    loop {
        let run_start = i;
        while i < p.len() && is_lower_alnum(p[i]) {
            i += 1;
        }
        if i == run_start {
            return false; // empty, or a separator not followed by a letter or digit
        }
        let Some(&separator) = p.get(i) else {
            return true;
        };
        i += 1;
        match separator {
            b'.' | b'/' => {}
            b'_' => {
                if p.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while p.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), InvalidReference> {
    let b = tag.as_bytes();
    let Some(&first) = b.first() else {
        return Err(InvalidReference::new("empty tag after \":\"".to_owned()));
    };
    if b.len() > TAG_MAX {
        return Err(InvalidReference::new(format!(
            "tag {} is {} characters long, more than {TAG_MAX}",
            Quoted(tag),
            b.len()
        )));
    }
    if !is_word(first) {
        return Err(InvalidReference::new(format!(
            "tag {} must start with a letter, a digit or \"_\"",
            Quoted(tag)
        )));
    }
    if !b.iter().all(|&c| is_word(c) || c == b'.' || c == b'-') {
        return Err(InvalidReference::new(format!(
            "tag {} may contain only letters, digits, \"_\", \".\" and \"-\"",
            Quoted(tag)
        )));
    }
    Ok(())
}

/// `sha256:` + 64 lower-case hex, or `sha512:` + 128 lower-case hex.
fn check_digest(digest: &str) -> Result<(), InvalidReference> {
    if digest.is_empty() {
        return Err(InvalidReference::new("empty digest after \"@\"".to_owned()));
    }
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(InvalidReference::new(format!(
            "digest {} must be \"algorithm:hex\", e.g. \"sha256:\" and 64 hex characters",
            Quoted(digest)
        )));
    };
    let Some(&(_, want)) = DIGEST_ALGORITHMS.iter().find(|(a, _)| *a == algorithm) else {
        return Err(InvalidReference::new(format!(
            "digest algorithm {} is not supported (sha256 or sha512)",
            Quoted(algorithm)
        )));
    };
    if hex.len() != want || !hex.bytes().all(is_lower_hex) {
        return Err(InvalidReference::new(format!(
            "digest {} must be {want} lower-case hex characters",
            Quoted(digest)
        )));
    }
    Ok(())
}

/// Letters, digits and punctuation: no space, no control character, no non-ASCII byte.
fn is_printable_ascii(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests;
