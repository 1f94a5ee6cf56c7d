//! Table tests for [`ImageRef::parse`], the `distribution/reference` test vectors, property
//! tests, and a differential check against the `oci-spec` crate.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// The hex of `docker.io/<hex>` in the Go test vectors.
const HEX64: &str = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
/// sha256 of the empty string.
const SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// sha512 of the empty string.
const SHA512: &str = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

/// What a row expects: the parsed parts, or a rejection whose reason contains a fragment.
#[derive(Debug, Clone)]
enum Want {
    Valid {
        domain: String,
        path: String,
        tag: Option<String>,
        digest: Option<String>,
    },
    Invalid(&'static str),
}

fn ok(domain: &str, path: &str) -> Want {
    Want::Valid {
        domain: domain.to_owned(),
        path: path.to_owned(),
        tag: None,
        digest: None,
    }
}

fn bad(reason_fragment: &'static str) -> Want {
    Want::Invalid(reason_fragment)
}

impl Want {
    fn tag(mut self, t: &str) -> Want {
        if let Want::Valid { tag, .. } = &mut self {
            *tag = Some(t.to_owned());
        }
        self
    }

    fn digest(mut self, d: &str) -> Want {
        if let Want::Valid { digest, .. } = &mut self {
            *digest = Some(d.to_owned());
        }
        self
    }
}

macro_rules! table {
    ($($input:expr => $want:expr),* $(,)?) => {
        vec![$((String::from($input), $want)),*]
    };
}

/// Every rule of image-reference parsing (README, "Decision rules"), one or more rows each.
fn rows() -> Vec<(String, Want)> {
    let upper_hex = format!("sha256:{}", &SHA256["sha256:".len()..].to_uppercase());
    let tag128 = format!("v{}", "1".repeat(127));
    let tag129 = format!("v{}", "1".repeat(128));
    // "docker.io/" (10) + 245 = 255: the longest name; one more is too long.
    let path245 = format!("team/{}", "a".repeat(240));
    let path246 = format!("team/{}", "a".repeat(241));
    // A Docker Hub short form is measured after normalisation: "docker.io/library/" is 18.
    let short237 = "b".repeat(237);
    let short238 = "b".repeat(238);
    let host_long = format!("{}.example.com", "h".repeat(200));

    table![
        // Docker Hub spellings
        "nginx" => ok("docker.io", "library/nginx"),
        "nginx:1.25" => ok("docker.io", "library/nginx").tag("1.25"),
        "library/nginx" => ok("docker.io", "library/nginx"),
        "docker.io/nginx" => ok("docker.io", "library/nginx"),
        "docker.io/library/nginx" => ok("docker.io", "library/nginx"),
        "index.docker.io/library/nginx" => ok("docker.io", "library/nginx"),
        "index.docker.io/nginx" => ok("docker.io", "library/nginx"),
        "registry-1.docker.io/nginx" => ok("registry-1.docker.io", "nginx"),
        "registry-1.docker.io/library/nginx" => ok("registry-1.docker.io", "library/nginx"),
        "DOCKER.IO/nginx" => ok("DOCKER.IO", "nginx"),
        "Index.Docker.IO/nginx" => ok("Index.Docker.IO", "nginx"),
        "bitnami/redis:7.2" => ok("docker.io", "bitnami/redis").tag("7.2"),
        "docker.io/library" => ok("docker.io", "library/library"),
        "a/b/c/d/e/f" => ok("docker.io", "a/b/c/d/e/f"),
        "my_org/web" => ok("docker.io", "my_org/web"),
        // a first component without '.', ':', upper case, and not localhost, is a Hub path
        "harbor/private/app" => ok("docker.io", "harbor/private/app"),
        "harbor.example.com" => ok("docker.io", "library/harbor.example.com"),
        "harbor.example.com:tag" => ok("docker.io", "library/harbor.example.com").tag("tag"),
        "harbor.example.com:5000" => ok("docker.io", "library/harbor.example.com").tag("5000"),
        "192.168.0.1" => ok("docker.io", "library/192.168.0.1"),
        "192.168.0.1:80" => ok("docker.io", "library/192.168.0.1").tag("80"),
        "localhost" => ok("docker.io", "library/localhost"),
        "localhost:5000" => ok("docker.io", "library/localhost").tag("5000"),
        // image IDs
        HEX64 => bad("bare 64-hex identifier"),
        format!("docker.io/{HEX64}") => ok("docker.io", &format!("library/{HEX64}")),
        format!("{HEX64}:latest") => ok("docker.io", &format!("library/{HEX64}")).tag("latest"),
        format!("{}a", HEX64) => ok("docker.io", &format!("library/{HEX64}a")),
        HEX64.to_uppercase() => bad("upper-case"),
        // single-label and upper-case hosts
        "localhost/x" => ok("localhost", "x"),
        "localhost:5000/x" => ok("localhost:5000", "x"),
        "LOCALDOMAIN/debian" => ok("LOCALDOMAIN", "debian"),
        "Docker/docker" => ok("Docker", "docker"),
        "myregistry:5000/x" => ok("myregistry:5000", "x"),
        "Harbor.Example.COM/team-a/app:1.0" => ok("Harbor.Example.COM", "team-a/app").tag("1.0"),
        // ports and IPv4
        "127.0.0.1:5000/docker/docker" => ok("127.0.0.1:5000", "docker/docker"),
        "192.168.0.1:8/debian" => ok("192.168.0.1:8", "debian"),
        "harbor.example.com:443/team-a/app:v1" => ok("harbor.example.com:443", "team-a/app").tag("v1"),
        "harbor.example.com:65535/app" => ok("harbor.example.com:65535", "app"),
        "harbor.example.com:0/app" => ok("harbor.example.com:0", "app"),
        "harbor.example.com:65536/app" => bad("greater than 65535"),
        "harbor.example.com:0443/app" => bad("has a leading zero"),
        "harbor.example.com:00/app" => bad("has a leading zero"),
        "harbor.example.com:99999999999999999999999/app" => bad("greater than 65535"),
        "harbor.example.com:/app" => bad("empty port"),
        "harbor.example.com:5x/app" => bad("is not a number"),
        "harbor.example.com:5000:6000/app" => bad("brackets"),
        // IPv4: the dotted quad is the one spelling; what a C resolver (inet_aton) also
        // reads as an address is invalid, and so is a host of numbers only
        // that is no address at all
        "10.0.0.5/x" => ok("10.0.0.5", "x"),
        "10.0.0.5:443/x" => ok("10.0.0.5:443", "x"),
        "0.0.0.0/x" => ok("0.0.0.0", "x"),
        "255.255.255.255:5000/x" => ok("255.255.255.255:5000", "x"),
        "10.0.0.5.nip.io/x" => ok("10.0.0.5.nip.io", "x"),
        "1.2.3.example/x" => ok("1.2.3.example", "x"),
        "10.0.0.5x/x" => ok("10.0.0.5x", "x"),
        "0x10.example/x" => ok("0x10.example", "x"),
        "0x1g.0.0.5/x" => ok("0x1g.0.0.5", "x"),
        "1e3.0.0.5/x" => ok("1e3.0.0.5", "x"),
        "a.0.0.5/x" => ok("a.0.0.5", "x"),
        "167772165/x" => ok("docker.io", "167772165/x"),
        "167772165:5000/x" => bad("host \"167772165:5000\" is IPv4 address 10.0.0.5 in another spelling"),
        "167772165:443/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "0xa.0.0.5/x" => bad("host \"0xa.0.0.5\" is IPv4 address 10.0.0.5 in another spelling"),
        "0XA.0.0.5/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "0xA.0x0.0X0.0x5:443/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "0x0a000005:5000/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "10.0.0.05/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "012.0.0.5/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "00000000000000000000012.0.0.5/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "10.0.5/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "10.5:443/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "10.0.0x5/x" => bad("IPv4 address 10.0.0.5 in another spelling"),
        "127.1/x" => bad("host \"127.1\" is IPv4 address 127.0.0.1 in another spelling"),
        "127.1:5000/x" => bad("IPv4 address 127.0.0.1 in another spelling"),
        "10.1.5/x" => bad("IPv4 address 10.1.0.5 in another spelling"),
        "0x7f000001:80/x" => bad("IPv4 address 127.0.0.1 in another spelling"),
        "0X7F000001/x" => bad("IPv4 address 127.0.0.1 in another spelling"),
        "127.16777215/x" => bad("IPv4 address 127.255.255.255 in another spelling"),
        "0.0.0.00/x" => bad("IPv4 address 0.0.0.0 in another spelling"),
        "00.0.0.0/x" => bad("IPv4 address 0.0.0.0 in another spelling"),
        "0:5000/x" => bad("IPv4 address 0.0.0.0 in another spelling"),
        "10.0.0.256/x" => bad("host \"10.0.0.256\" is all numbers but no IPv4 address"),
        "256.0.0.1/x" => bad("all numbers but no IPv4 address"),
        "127.16777216/x" => bad("all numbers but no IPv4 address"),
        "10.0.0.0.5/x" => bad("all numbers but no IPv4 address"),
        "4294967296:80/x" => bad("all numbers but no IPv4 address"),
        "0x100000000:80/x" => bad("all numbers but no IPv4 address"),
        "99999999999999999999999.1/x" => bad("all numbers but no IPv4 address"),
        "08.0.0.5/x" => bad("all numbers but no IPv4 address"),
        "019.0.0.5/x" => bad("all numbers but no IPv4 address"),
        "0x.0.0.5/x" => bad("all numbers but no IPv4 address"),
        "10.0.0.0X:5000/x" => bad("all numbers but no IPv4 address"),
        // IPv6
        "[fc00::1]:5000/x" => ok("[fc00::1]:5000", "x"),
        "[fc00::1]/x" => ok("[fc00::1]", "x"),
        "[FC00::ABCD]:5000/x" => ok("[FC00::ABCD]:5000", "x"),
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian" => ok("[fc00:1:2:3:4:5:6:7]:5000", "library/debian"),
        "[fc00::1]" => bad("must be lower-case letters and digits"),
        "[fe80::1%eth0]:5000/debian" => bad("no zone"),
        "[2001:db8::192.0.2.33]:5000/x" => bad("no dotted IPv4"),
        "fc00::1:5000/debian" => bad("goes in brackets"),
        "[fc00::1:5000/x" => bad("no closing \"]\""),
        "[]:5000/x" => bad("not a valid IPv6 address"),
        "[:::]/x" => bad("not a valid IPv6 address"),
        "[fc00:0:0:0:0:0:0:1]/x" => bad("not in the shortest form of its IPv6 address, [fc00::1]"),
        "[fc00:0::1]:5000/x" => bad("shortest form"),
        "[0fc0::1]/x" => bad("shortest form"),
        "[fc00::1]x/y" => bad("only \":port\" may follow"),
        // host names
        "a.b/c" => ok("a.b", "c"),
        "xn--bcher-kva.example/app" => ok("xn--bcher-kva.example", "app"),
        "harbor.example.com./app" => bad("host \"harbor.example.com.\" is not a valid host name"),
        ".example.com/app" => bad("not a valid host name"),
        "harbor..example.com/app" => bad("not a valid host name"),
        "-harbor.example.com/app" => bad("not a valid host name"),
        "harbor-.example.com/app" => bad("not a valid host name"),
        "harbor_x.example.com/app" => bad("not a valid host name"),
        "https://harbor.example.com/app" => bad("URL scheme"),
        // path components
        "harbor.example.com/team-a/sub/app" => ok("harbor.example.com", "team-a/sub/app"),
        "harbor.example.com/Team-a/app" => bad("path component \"Team-a\" has upper-case letters"),
        "docker/Docker" => bad("path component \"Docker\" has upper-case letters"),
        "Uppercase:tag" => bad("upper-case"),
        "dock__er/docker" => ok("docker.io", "dock__er/docker"),
        "docker---rules/docker" => ok("docker.io", "docker---rules/docker"),
        "x/a-b_c.d__e" => ok("docker.io", "x/a-b_c.d__e"),
        // a first component with '.' is a host, so it fails the host grammar
        "a-b_c.d__e/f" => bad("host \"a-b_c.d__e\" is not a valid host name"),
        "dock..er/docker" => bad("not a valid host name"),
        "docker/dock..er" => bad("must be lower-case letters and digits"),
        "docker/dock_.er" => bad("must be lower-case letters and digits"),
        "docker/dock.-er" => bad("must be lower-case letters and digits"),
        "dock___er/docker" => bad("must be lower-case letters and digits"),
        "harbor.example.com/team%2Fa/app" => bad("path component \"team%2Fa\""),
        "harbor.example.com/team-a/../app" => bad("path component \"..\""),
        "harbor.example.com/team-a/./app" => bad("path component \".\""),
        "a//b" => bad("empty path component"),
        "docker/" => bad("trailing \"/\""),
        "harbor.example.com/" => bad("trailing \"/\""),
        "/nginx" => bad("leading \"/\""),
        "-docker" => bad("must be lower-case letters and digits"),
        "docker-/docker" => bad("must be lower-case letters and digits"),
        "____/____" => bad("must be lower-case letters and digits"),
        "ng!nx" => bad("must be lower-case letters and digits"),
        // whitespace, control characters, non-ASCII
        "" => bad("empty reference"),
        " nginx" => bad("leading or trailing whitespace"),
        "nginx " => bad("leading or trailing whitespace"),
        "nginx\n" => bad("leading or trailing whitespace"),
        "ng inx" => bad("U+0020"),
        "ng\tinx" => bad("U+0009"),
        "nginx\0" => bad("U+0000"),
        "ng\u{7f}inx" => bad("U+007F"),
        "harbor.example.com/app:1.0\r" => bad("leading or trailing whitespace"),
        "\u{ff4e}ginx" => bad("U+FF4E"),
        "nginx\u{200b}" => bad("U+200B ('\\u{200b}')"),
        "h\u{e9}llo/app" => bad("U+00E9"),
        // tags
        "nginx:latest" => ok("docker.io", "library/nginx").tag("latest"),
        "nginx:1.25.3-alpine_x" => ok("docker.io", "library/nginx").tag("1.25.3-alpine_x"),
        "nginx:_x" => ok("docker.io", "library/nginx").tag("_x"),
        "nginx:Latest" => ok("docker.io", "library/nginx").tag("Latest"),
        format!("nginx:{tag128}") => ok("docker.io", "library/nginx").tag(&tag128),
        format!("nginx:{tag129}") => bad("129 characters long, more than 128"),
        "nginx:.x" => bad("must start with a letter, a digit or \"_\""),
        "nginx:-x" => bad("must start with a letter, a digit or \"_\""),
        "nginx:" => bad("empty tag"),
        "nginx:a+b" => bad("may contain only"),
        "nginx:1:2" => bad("path component \"nginx:1\""),
        "localhost:5000/app:v1" => ok("localhost:5000", "app").tag("v1"),
        // digests
        format!("nginx@{SHA256}") => ok("docker.io", "library/nginx").digest(SHA256),
        format!("nginx:1.25@{SHA256}") => ok("docker.io", "library/nginx").tag("1.25").digest(SHA256),
        format!("harbor.example.com:5000/team-a/app:v1@{SHA256}")
            => ok("harbor.example.com:5000", "team-a/app").tag("v1").digest(SHA256),
        format!("nginx@{SHA512}") => ok("docker.io", "library/nginx").digest(SHA512),
        "nginx@sha256:ffff" => bad("digest \"sha256:ffff\" must be 64 lower-case hex characters"),
        format!("nginx@{SHA256}0") => bad("must be 64 lower-case hex"),
        format!("nginx@{upper_hex}") => bad("must be 64 lower-case hex"),
        format!("nginx@sha512:{}", &SHA256[7..]) => bad("must be 128 lower-case hex"),
        format!("nginx@sha384:{}", "a".repeat(96)) => bad("algorithm \"sha384\" is not supported"),
        format!("nginx@md5:{}", "a".repeat(32)) => bad("algorithm \"md5\" is not supported"),
        format!("nginx@SHA256:{}", &SHA256[7..]) => bad("algorithm \"SHA256\" is not supported"),
        "nginx@sha256" => bad("must be \"algorithm:hex\""),
        "nginx@" => bad("empty digest"),
        format!("nginx@{SHA256}@{SHA256}") => bad("must be 64 lower-case hex"),
        format!("@{SHA256}") => bad("missing repository name"),
        ":justtag" => bad("missing repository name"),
        // lengths (the name is measured as normalised, like Go)
        format!("docker.io/{path245}") => ok("docker.io", &path245),
        format!("docker.io/{path246}") => bad("256 characters long once normalised"),
        format!("{path245}:v1") => ok("docker.io", &path245).tag("v1"),
        short237.clone() => ok("docker.io", &format!("library/{short237}")),
        short238 => bad("256 characters long once normalised, more than 255"),
        format!("{host_long}/app") => ok(&host_long, "app"),
        format!("{host_long}/{}", "c".repeat(43)) => bad("more than 255"),
    ]
}

fn check(input: &str, want: &Want) -> Result<(), String> {
    let got = ImageRef::parse(input);
    match (want, &got) {
        (
            Want::Valid {
                domain,
                path,
                tag,
                digest,
            },
            Ok(r),
        ) => {
            let want_parts = (
                domain.as_str(),
                path.as_str(),
                tag.as_deref(),
                digest.as_deref(),
            );
            let got_parts = (r.domain(), r.path(), r.tag(), r.digest());
            if want_parts == got_parts {
                Ok(())
            } else {
                Err(format!("{input:?}: want {want_parts:?}, got {got_parts:?}"))
            }
        }
        (Want::Invalid(fragment), Err(e)) if e.reason().contains(fragment) => Ok(()),
        (Want::Invalid(fragment), Err(e)) => Err(format!(
            "{input:?}: rejected, but the reason {:?} lacks {fragment:?}",
            e.reason()
        )),
        (want, got) => Err(format!("{input:?}: want {want:?}, got {got:?}")),
    }
}

fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table() {
    let rows = rows();
    assert!(rows.len() >= 80, "the table has only {} rows", rows.len());
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(input, want)| check(input, want).err())
        .collect();
    assert_no_failures(&failures);
}

#[test]
fn table_inputs_are_unique() {
    let mut seen = BTreeSet::new();
    for (input, _) in rows() {
        assert!(
            seen.insert(input.clone()),
            "{input:?} appears twice in the table"
        );
    }
}

#[test]
fn valid_rows_display_canonically_and_reparse_equal() {
    for (input, want) in rows() {
        if let Want::Valid {
            domain,
            path,
            tag,
            digest,
        } = want
        {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let mut canonical = format!("{domain}/{path}");
            if let Some(t) = tag {
                canonical = format!("{canonical}:{t}");
            }
            if let Some(d) = digest {
                canonical = format!("{canonical}@{d}");
            }
            assert_eq!(r.to_string(), canonical, "{input:?}");
            assert_eq!(ImageRef::parse(&canonical), Ok(r.clone()), "{input:?}");
            assert_eq!(canonical.parse::<ImageRef>(), Ok(r), "{input:?}");
        }
    }
}

#[test]
fn host_key_is_the_lower_cased_domain() {
    let cases = [
        ("nginx", "docker.io"),
        ("DOCKER.IO/nginx", "docker.io"),
        ("Harbor.Example.COM/team-a/app:V1", "harbor.example.com"),
        ("LOCALDOMAIN/debian", "localdomain"),
        ("[FC00::ABCD]:5000/x", "[fc00::abcd]:5000"),
        ("harbor.example.com:443/team-a/app", "harbor.example.com:443"),
        (
            "Harbor.Example.COM:5000/app:Tag@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "harbor.example.com:5000",
        ),
    ];
    for (input, want) in cases {
        let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(r.host_key(), want, "{input:?}");
        assert_eq!(r.domain().to_ascii_lowercase(), want, "{input:?}");
        // The lower-case copy never leaks into the canonical form.
        assert!(
            !r.to_string().ends_with(&format!("{want}{want}")),
            "{input:?}"
        );
    }
}

#[test]
fn reasons_are_lower_case_phrases_with_escaped_input() {
    for (input, want) in rows() {
        if matches!(want, Want::Invalid(_)) {
            let e = ImageRef::parse(&input).expect_err(&input);
            let reason = e.reason();
            assert_eq!(e.to_string(), reason, "{input:?}");
            assert!(
                reason.starts_with(|c: char| c.is_ascii_lowercase()),
                "{input:?}: reason {reason:?} does not start lower-case"
            );
            assert!(
                !reason.chars().any(char::is_control),
                "{input:?}: reason {reason:?} has a raw control character"
            );
            assert!(
                reason.chars().count() < 250,
                "{input:?}: reason {reason:?} is too long"
            );
        }
    }
}

#[test]
fn exact_reasons() {
    let cases = [
        ("", "empty reference"),
        (HEX64, "a bare 64-hex identifier is not a reference (write docker.io/<hex> for a repository of that name)"),
        ("docker.io/docker/Docker", "path component \"Docker\" has upper-case letters"),
        ("nginx@sha256:ffff", "digest \"sha256:ffff\" must be 64 lower-case hex characters"),
        ("docker/", "trailing \"/\" in \"docker/\""),
        ("harbor.example.com./app", "host \"harbor.example.com.\" is not a valid host name"),
        ("0xa.0.0.5:5000/app", "host \"0xa.0.0.5:5000\" is IPv4 address 10.0.0.5 in another spelling; only \"10.0.0.5\" is valid"),
        ("1.2.3.4.5/app", "host \"1.2.3.4.5\" is all numbers but no IPv4 address; only a dotted quad of 0 to 255 each is valid"),
        ("nginx\u{200b}", "character U+200B ('\\u{200b}') is not allowed in a reference: \"nginx\\u{200b}\""),
        ("nginx:", "empty tag after \":\""),
        ("nginx@", "empty digest after \"@\""),
    ];
    for (input, want) in cases {
        let e = ImageRef::parse(input).expect_err(input);
        assert_eq!(e.reason(), want, "{input:?}");
    }
}

#[test]
fn long_input_is_quoted_short() {
    let input = format!("{}!", "a".repeat(10_000));
    let e = ImageRef::parse(&input).expect_err("a 10,001-character reference");
    assert!(e.reason().len() < 250, "{:?}", e.reason());
    assert!(e.reason().contains("..."), "{:?}", e.reason());
}

#[test]
fn error_type_is_a_std_error() {
    fn takes_error(_: &dyn std::error::Error) {}
    let e = ImageRef::parse("").expect_err("empty");
    takes_error(&e);
}

/// The Go package's own test tables, copied into the crate so the test needs no outside file.
#[derive(serde::Deserialize)]
struct Vectors {
    valid: Vec<String>,
    invalid: Vec<String>,
    mapping: Vec<(String, String, Vec<String>)>,
}

fn vectors() -> Vectors {
    let json = include_str!("../../tests/data/reference-test-vectors.json");
    serde_json::from_str(json).expect("tests/data/reference-test-vectors.json parses")
}

#[test]
fn go_vectors_valid() {
    let v = vectors();
    assert!(!v.valid.is_empty());
    let failures: Vec<String> = v
        .valid
        .iter()
        .filter_map(|s| {
            ImageRef::parse(s)
                .err()
                .map(|e| format!("{s:?}: rejected: {e}"))
        })
        .collect();
    assert_no_failures(&failures);
}

#[test]
fn go_vectors_invalid() {
    let v = vectors();
    assert!(!v.invalid.is_empty());
    let failures: Vec<String> = v
        .invalid
        .iter()
        .filter_map(|s| {
            ImageRef::parse(s)
                .ok()
                .map(|r| format!("{s:?}: accepted as {r:?}"))
        })
        .collect();
    assert_no_failures(&failures);
}

#[test]
fn go_vectors_mapping() {
    let v = vectors();
    assert!(!v.mapping.is_empty());
    let mut failures = Vec::new();
    for (domain, path, spellings) in &v.mapping {
        for s in spellings {
            match ImageRef::parse(s) {
                Ok(r) if r.domain() == domain && r.path() == path => {}
                Ok(r) => failures.push(format!(
                    "{s:?}: want ({domain:?}, {path:?}), got ({:?}, {:?})",
                    r.domain(),
                    r.path()
                )),
                Err(e) => failures.push(format!("{s:?}: rejected: {e}")),
            }
        }
    }
    assert_no_failures(&failures);
}

// Differential check against the `oci-spec` crate (its `distribution::Reference`, a regex
// port of the same Go grammar).
//
// Both parsers agree on every input below except the ones in `OCI_SPEC_DIFFERENCES`, and
// the test fails if one of those stops differing, so the list stays true. The intentional
// differences, by kind:
//
// - An upper-case single-label first component ("LOCALDOMAIN/debian", "Docker/docker") is
//   a host for Go's `splitDockerDomain` and for us; oci-spec keeps it in the Docker Hub
//   path, giving a path with upper case that Go rejects.
// - IPv6 hosts in brackets are in Go's grammar and ours; oci-spec's regex lacks them.
// - A bare 64-hex string is an image ID for Go and for us; oci-spec takes it as a name.
// - A first component that must be a host (it has a '.') but breaks the host grammar, while
//   being a valid path component ("harbor_x.example.com/app"), is invalid for pullgate's host grammar and
//   for us. oci-spec takes it as the registry anyway; Go's `ParseNormalizedNamed` accepts
//   it too, as a name with an empty domain (its regex falls back to "no domain").
// - Ports above 65535 are our extra check; Go and oci-spec accept any digits.
// - A host whose every part is a number as C's `inet_aton` reads it must be the dotted
//   quad: `127.1`, `0xa.0.0.5`, `167772165:5000`, `10.0.0.256` are invalid for
//   us; Go and oci-spec take them as host names (`0X7F000001` is a Docker Hub path there).
// - oci-spec accepts upper-case digest hex and sha384; pullgate allows lower-case sha256
//   and sha512 only.
// - oci-spec, like Go's current code, limits the path to 255 characters; we limit the
//   normalised `domain/path` (see the module doc).
// - oci-spec gives a reference without tag or digest the tag "latest"; that is mapped
//   before comparing, not listed.
const OCI_SPEC_DIFFERENCES: &[&str] = &[
    // upper-case single-label host
    "LOCALDOMAIN/debian",
    "LOCALDOMAIN/library/debian",
    "LOCALDOMAIN/fooo",
    "LOCALDOMAIN/fooo/bar",
    "Docker/docker",
    "DOCKER/docker",
    "Foo/bar",
    "FOO/bar",
    // IPv6
    "[fc00::1]:5000/x",
    "[fc00::1]/x",
    "[FC00::ABCD]:5000/x",
    "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    "[fc00::1]:5000/docker",
    "[fc00::1]:5000/docker/docker",
    // bare image ID
    HEX64,
    // host grammar where the component is also a valid path component
    "a-b_c.d__e/f",
    "harbor_x.example.com/app",
    // port range
    "harbor.example.com:65536/app",
    "harbor.example.com:99999999999999999999999/app",
    // ports with a leading zero
    "harbor.example.com:0443/app",
    "harbor.example.com:00/app",
    // numeric hosts other than the dotted quad
    "167772165:5000/x",
    "167772165:443/x",
    "0xa.0.0.5/x",
    "0XA.0.0.5/x",
    "0xA.0x0.0X0.0x5:443/x",
    "0x0a000005:5000/x",
    "10.0.0.05/x",
    "012.0.0.5/x",
    "00000000000000000000012.0.0.5/x",
    "10.0.5/x",
    "10.5:443/x",
    "10.0.0x5/x",
    "127.1/x",
    "127.1:5000/x",
    "10.1.5/x",
    "0x7f000001:80/x",
    "0X7F000001/x",
    "127.16777215/x",
    "0.0.0.00/x",
    "00.0.0.0/x",
    "0:5000/x",
    "10.0.0.256/x",
    "256.0.0.1/x",
    "127.16777216/x",
    "10.0.0.0.5/x",
    "4294967296:80/x",
    "0x100000000:80/x",
    "99999999999999999999999.1/x",
    "08.0.0.5/x",
    "019.0.0.5/x",
    "0x.0.0.5/x",
    "10.0.0.0X:5000/x",
    // digests
    "nginx@SHA256-UPPER-HEX",
    "nginx@sha384:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    // name length measured after normalisation
    "DOCKER-IO-PATH-246",
    "SHORT-238",
    "LONG-HOST-NAME",
];

/// Spells the placeholders of `OCI_SPEC_DIFFERENCES` that stand for long inputs.
fn expand_difference(s: &str) -> String {
    match s {
        "nginx@SHA256-UPPER-HEX" => format!("nginx@sha256:{}", SHA256[7..].to_uppercase()),
        "DOCKER-IO-PATH-246" => format!("docker.io/team/{}", "a".repeat(241)),
        "SHORT-238" => "b".repeat(238),
        "LONG-HOST-NAME" => format!("{}.example.com/{}", "h".repeat(200), "c".repeat(43)),
        other => other.to_owned(),
    }
}

type Parts = (String, String, Option<String>, Option<String>);

fn ours(s: &str) -> Option<Parts> {
    ImageRef::parse(s).ok().map(|r| {
        (
            r.domain().to_owned(),
            r.path().to_owned(),
            r.tag().map(str::to_owned),
            r.digest().map(str::to_owned),
        )
    })
}

fn oci_spec(s: &str) -> Option<Parts> {
    let r = oci_spec::distribution::Reference::try_from(s).ok()?;
    // oci-spec fills in "latest" when there is neither tag nor digest; we keep "no tag".
    let tag = match (r.tag(), r.digest()) {
        (Some("latest"), None) if !s.ends_with(":latest") => None,
        (tag, _) => tag.map(str::to_owned),
    };
    Some((
        r.registry().to_owned(),
        r.repository().to_owned(),
        tag,
        r.digest().map(str::to_owned),
    ))
}

#[test]
fn oci_spec_agrees_except_listed_differences() {
    let v = vectors();
    let mut inputs: BTreeSet<String> = rows().into_iter().map(|(input, _)| input).collect();
    inputs.extend(v.valid);
    inputs.extend(v.invalid);
    inputs.extend(
        v.mapping
            .into_iter()
            .flat_map(|(_, _, spellings)| spellings),
    );

    let known: BTreeSet<String> = OCI_SPEC_DIFFERENCES
        .iter()
        .map(|s| expand_difference(s))
        .collect();
    let mut compared_valid = 0;
    let mut failures = Vec::new();
    for input in &inputs {
        let (a, b) = (ours(input), oci_spec(input));
        if a.is_some() && b.is_some() {
            compared_valid += 1;
        }
        match (a == b, known.contains(input)) {
            (true, false) | (false, true) => {}
            (false, false) => failures.push(format!(
                "{input:?}: ours {a:?}, oci-spec {b:?} (not a listed difference)"
            )),
            (true, true) => failures.push(format!(
                "{input:?}: listed as a difference, but both give {a:?}"
            )),
        }
    }
    for k in &known {
        assert!(
            inputs.contains(k),
            "listed difference {k:?} is not a test input"
        );
    }
    assert!(
        compared_valid >= 80,
        "only {compared_valid} references were valid for both parsers"
    );
    assert_no_failures(&failures);
}

// Property tests.

/// A valid reference built from the grammar, with the parts it must parse into.
#[derive(Debug, Clone)]
struct Generated {
    text: String,
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn port() -> impl Strategy<Value = String> {
    (0u32..=65_535).prop_map(|p| format!(":{p}"))
}

fn optional_port() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), port()]
}

/// Whether a generated host name could be read as numbers by `inet_aton` (every label
/// starts with a digit): those are valid only as a dotted quad, generated on their own.
fn maybe_numeric(host: &str) -> bool {
    host.split('.')
        .all(|l| l.starts_with(|c: char| c.is_ascii_digit()))
}

/// Domains that oci-spec parses the same way as Go and we do.
fn shared_domain() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";
    prop_oneof![
        (prop::collection::vec(label, 2..4), optional_port())
            .prop_filter("not a numeric host", |(labels, _)| !maybe_numeric(
                &labels.join(".")
            ))
            .prop_map(|(labels, port)| format!("{}{port}", labels.join("."))),
        ("[a-z0-9]{1,8}", port())
            .prop_filter("not a numeric host", |(l, _)| !maybe_numeric(l))
            .prop_map(|(l, p)| format!("{l}{p}")),
        optional_port().prop_map(|p| format!("localhost{p}")),
        (any::<[u8; 4]>(), optional_port())
            .prop_map(|([a, b, c, d], p)| format!("{a}.{b}.{c}.{d}{p}")),
        Just(DOCKER_HUB.to_owned()),
        Just(DOCKER_HUB_LEGACY.to_owned()),
    ]
}

/// Domains of Go's grammar that oci-spec does not take as domains: an upper-case single
/// label, and IPv6 in brackets.
fn go_only_domain() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[A-Z][a-zA-Z0-9]{0,5}", optional_port()).prop_map(|(l, p)| format!("{l}{p}")),
        // Addresses in their shortest form (any case), which is all a reference may hold.
        (any::<[u16; 8]>(), any::<bool>(), optional_port())
            .prop_map(|(segments, upper, p)| {
                let ip = std::net::Ipv6Addr::from(segments).to_string();
                format!("[{}]{p}", if upper { ip.to_uppercase() } else { ip })
            })
            .prop_filter("no dotted IPv4 form", |d| !d.contains('.')),
    ]
}

fn any_domain() -> impl Strategy<Value = String> {
    prop_oneof![3 => shared_domain(), 1 => go_only_domain()]
}

const COMPONENT: &str = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}";
/// A first component that cannot be taken for a host (no '.').
const HUB_FIRST_COMPONENT: &str = "[a-z0-9]{1,6}((_|__|-{1,3})[a-z0-9]{1,6}){0,2}";

/// References with a domain from `domain`, or Docker Hub short forms.
fn generated(domain: impl Strategy<Value = String>) -> impl Strategy<Value = Generated> {
    let explicit = (domain, prop::collection::vec(COMPONENT, 1..4));
    let short = (
        HUB_FIRST_COMPONENT,
        prop::collection::vec(COMPONENT, 0..3),
        COMPONENT,
    )
        .prop_map(|(first, rest, single)| {
            if rest.is_empty() {
                vec![single]
            } else {
                std::iter::once(first).chain(rest).collect()
            }
        });
    let name = prop_oneof![
        explicit.prop_map(|(d, comps)| (Some(d), comps)),
        short.prop_map(|comps| (None, comps)),
    ];
    let tag = prop::option::of("[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,20}");
    let digest = prop::option::of(prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]);
    (name, tag, digest).prop_map(|((written, comps), tag, digest)| {
        let written_path = comps.join("/");
        let mut text = match &written {
            Some(d) => format!("{d}/{written_path}"),
            None => written_path.clone(),
        };
        if let Some(t) = &tag {
            text = format!("{text}:{t}");
        }
        if let Some(d) = &digest {
            text = format!("{text}@{d}");
        }
        let domain = match written.as_deref() {
            None | Some(DOCKER_HUB_LEGACY) => DOCKER_HUB.to_owned(),
            Some(d) => d.to_owned(),
        };
        let path = if domain == DOCKER_HUB && comps.len() == 1 {
            format!("library/{written_path}")
        } else {
            written_path
        };
        Generated {
            text,
            domain,
            path,
            tag,
            digest,
        }
    })
}

/// Parsing never panics; a parsed reference prints as a canonical form that parses back to
/// an equal reference and prints the same; a rejection has a printable reason.
fn check_total(s: &str) -> Result<(), TestCaseError> {
    match ImageRef::parse(s) {
        Ok(r) => {
            let canonical = r.to_string();
            let again = ImageRef::parse(&canonical);
            prop_assert_eq!(again.as_ref(), Ok(&r), "{:?} printed as {:?}", s, canonical);
            prop_assert_eq!(again.map(|a| a.to_string()), Ok(canonical));
            prop_assert_eq!(r.host_key(), r.domain().to_ascii_lowercase());
        }
        Err(e) => {
            prop_assert!(!e.reason().is_empty());
            prop_assert!(!e.reason().chars().any(char::is_control), "{:?}", e);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_unicode_never_panics(s in any::<String>()) {
        check_total(&s)?;
    }

    #[test]
    fn reference_alphabet_never_panics(s in "[a-zA-Z0-9./:@_-]{0,80}") {
        check_total(&s)?;
    }

    #[test]
    fn reference_shaped_strings_never_panic(
        s in "([a-zA-Z0-9]{1,4}[./:@_-]{0,2}){0,12}(@sha(256|512):[0-9a-fA-F]{0,130})?"
    ) {
        check_total(&s)?;
    }

    #[test]
    fn generated_references_parse_into_their_parts(g in generated(any_domain())) {
        let r = ImageRef::parse(&g.text);
        prop_assert!(r.is_ok(), "{:?}: {:?}", g.text, r);
        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.domain(), g.domain.as_str(), "{:?}", g.text);
        prop_assert_eq!(r.path(), g.path.as_str(), "{:?}", g.text);
        prop_assert_eq!(r.tag(), g.tag.as_deref(), "{:?}", g.text);
        prop_assert_eq!(r.digest(), g.digest.as_deref(), "{:?}", g.text);
        check_total(&g.text)?;
    }

    #[test]
    fn one_edit_of_a_valid_reference_never_panics(
        g in generated(any_domain()),
        at in any::<prop::sample::Index>(),
        c in prop::sample::select(&['/', ':', '@', '.', '-', '_', '[', ']', 'A', 'z', '0', ' ', '\u{e9}'][..]),
        remove in any::<bool>(),
    ) {
        let mut chars: Vec<char> = g.text.chars().collect();
        let i = at.index(chars.len() + 1);
        if remove && i < chars.len() {
            chars.remove(i);
        } else {
            chars.insert(i, c);
        }
        check_total(&chars.into_iter().collect::<String>())?;
    }

    #[test]
    fn oci_spec_agrees_on_generated_references(g in generated(shared_domain())) {
        prop_assert_eq!(ours(&g.text), oci_spec(&g.text), "{:?}", g.text);
    }

    /// Any address spelled as `inet_aton` reads it (one to four parts, each decimal,
    /// octal or hex) is read back as that address, and is a valid host only as the
    /// dotted quad; a leading part above 255 makes it no address.
    #[test]
    fn inet_aton_spellings_of_an_address(
        address in any::<u32>(),
        parts in 1usize..=4,
        radices in any::<[u8; 4]>(),
        overflow in prop::option::of(0usize..3),
        // With a port the first component is a host even without a '.' (`0x0:80/x`).
        port in port(),
    ) {
        let spelled = spell_ipv4(address, parts, radices, overflow);
        let ip = std::net::Ipv4Addr::from(address);
        let decimal = radices[..parts].iter().all(|r| r % 3 == 0);
        let want = match overflow {
            Some(i) if i + 1 < parts => NumericHost::NoAddress,
            _ if parts == 4 && decimal => NumericHost::DottedQuad,
            _ => NumericHost::OtherSpelling(ip),
        };
        prop_assert_eq!(read_numeric_host(&spelled), want, "{}", spelled);
        let valid = ImageRef::parse(&format!("{spelled}{port}/x")).is_ok();
        prop_assert_eq!(valid, read_numeric_host(&spelled) == NumericHost::DottedQuad, "{}", spelled);
    }
}

/// Spells `address` in `parts` numbers the way `inet_aton` reads them: every part but the
/// last is one byte, the last holds the rest. Part `i` is decimal, octal (`0…`) or hex
/// (`0x…`/`0X…`) as `radices[i]` says; `overflow` adds 256 to one leading part.
fn spell_ipv4(address: u32, parts: usize, radices: [u8; 4], overflow: Option<usize>) -> String {
    let bytes = address.to_be_bytes();
    let mut values: Vec<u64> = bytes[..parts - 1].iter().map(|&b| u64::from(b)).collect();
    let rest = bytes[parts - 1..]
        .iter()
        .fold(0u64, |n, &b| n << 8 | u64::from(b));
    values.push(rest);
    if let Some(i) = overflow.filter(|i| i + 1 < parts) {
        values[i] += 256;
    }
    values
        .iter()
        .zip(radices)
        .map(|(v, r)| match r % 6 {
            0 | 3 => format!("{v}"),
            1 => format!("0{v:o}"),
            2 => format!("0x{v:x}"),
            4 => format!("0X{v:X}"),
            _ => format!("0x{v:X}"),
        })
        .collect::<Vec<_>>()
        .join(".")
}
