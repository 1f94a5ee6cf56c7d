//! The overview page of `pullgate serve --ui-listen` as a browser shows it: the binary
//! runs standalone with a live Docker Registry (the real one, with API credentials), a
//! registry on a closed port, a space, a workspace, and a denial sent through the
//! webhook first; headless Chromium renders the page (`--dump-dom`) and takes a
//! screenshot, kept at `target/test-artefacts/overview.png` for a person to look at.
//! Also: 405 for every non-GET, 404 elsewhere, 403 for a Host that is not local (DNS
//! rebinding), hostile names escaped.
//!
//! Chromium is Debian's `chromium` package, which `tests/run.sh` installs; without it
//! the browser checks print a notice and pass, unless `PULLGATE_REQUIRE_CHROMIUM` is set
//! (as `tests/run.sh` does), when they fail.

use crate::support::binary::Binary;
use crate::support::closed_port;
use crate::support::registry::{overview_config, tools_available, RealRegistry};
use crate::support::webhook::post_tls;

use base64::Engine;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pullgate::admission::testing::{in_ns, object, pod_spec, review};
use serde_json::{json, Value};

const REQUIRE_CHROMIUM: &str = "PULLGATE_REQUIRE_CHROMIUM";
const USER: (&str, &str) = ("admin", "ui-secret-Pa55word");
/// A Chromium run that takes longer than this is stuck (it normally takes a second or two).
const BROWSER_LIMIT: Duration = Duration::from_secs(90);
/// A name no page may turn into markup.
const HOSTILE: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

/// Whether `chromium` can be run; see the module doc.
fn chromium_available() -> bool {
    match Command::new("chromium").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        other => {
            assert!(
                std::env::var_os(REQUIRE_CHROMIUM).is_none(),
                "{REQUIRE_CHROMIUM} is set but chromium cannot be run ({other:?}); install Debian's chromium package"
            );
            eprintln!(
                "NOTICE: chromium not found; the overview page browser test is skipped. Install Debian's `chromium` package or run tests/run.sh."
            );
            false
        }
    }
}

/// Runs headless Chromium on `url` with `args` (its own profile directory); its stdout.
fn chromium(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            panic!("chromium did not finish within {BROWSER_LIMIT:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium {args:?} failed: {status}");
    reader.join().unwrap()
}

/// The text a person reads in `html`: tags dropped, entities decoded, blanks collapsed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The element of `dom` that starts with `open` (up to its `</tr>`), as text.
fn row(dom: &str, open: &str) -> String {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in\n{dom}"));
    let end = dom[start..].find("</tr>").map_or(dom.len(), |e| start + e);
    text_of(&dom[start..end])
}

/// Rows of the table with class `table` whose text contains `needle`.
fn rows_with(dom: &str, table: &str, needle: &str) -> Vec<String> {
    let start = dom
        .find(&format!("<table class=\"{table}\""))
        .unwrap_or_else(|| panic!("no table {table}"));
    let end = dom[start..].find("</table>").unwrap() + start;
    dom[start..end]
        .split("<tr")
        .skip(1)
        .map(text_of)
        .filter(|t| t.contains(needle))
        .collect()
}

/// Sends a Pod named `name` using `image` in namespace `ns` to /validate; its response.
fn validate(b: &Binary, ns: &str, name: &str, image: &str) -> Value {
    let mut pod = object("Pod", pod_spec(&[image]));
    pod["metadata"] = json!({"name": name, "namespace": ns});
    let body = in_ns(review("Pod", "CREATE", pod, None), ns).to_string();
    let (status, body) =
        post_tls(b.addr, &b.ca_pem, "/validate", body.as_bytes()).expect("response");
    assert_eq!(status, 200);
    serde_json::from_slice::<Value>(&body).unwrap()["response"].clone()
}

/// One plain-HTTP request to the page's port; (status, head, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    http_to(addr, "localhost", method, path)
}

/// [`http`] naming the page `host`.
fn http_to(addr: SocketAddr, host: &str, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn artefact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn screenshot(url: &str, name: &str, size: &str) -> PathBuf {
    let path = artefact(name);
    let _ = std::fs::remove_file(&path);
    chromium(
        url,
        &[
            &format!("--screenshot={}", path.display()),
            &format!("--window-size={size}"),
        ],
    );
    let png = std::fs::read(&path).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} is not a rendered page ({} bytes)",
        path.display(),
        png.len()
    );
    println!("overview page screenshot ({size}): {}", path.display());
    path
}

#[test]
fn chromium_renders_registries_spaces_workspaces_and_denials() {
    if !tools_available() || !chromium_available() {
        return;
    }
    let live = RealRegistry::start(Some(USER));
    for repo in ["team-a/app", "team-a/api", "team-b/web", "tools/ci"] {
        live.push(repo, "1");
    }
    let b = Binary::start(
        &overview_config(&live, USER, closed_port()),
        &["--ui-listen", "127.0.0.1:0"],
    );
    let ui = b.ui.expect("the overview page address is logged");
    let url = format!("http://{ui}/");

    // A denial through the webhook: team-b is bound to ws-b only.
    let denied_image = format!("{}/team-b/web:1", live.host());
    let r = validate(&b, "app-1", "web-1", &denied_image);
    assert_eq!(r["allowed"], false, "{r}");
    // An allowed pod is not a denial.
    let allowed_image = format!("{}/team-a/app:1", live.host());
    assert_eq!(
        validate(&b, "app-1", "fine-1", &allowed_image)["allowed"],
        true
    );

    let dom = chromium(&url, &["--dump-dom"]);
    let text = text_of(&dom);

    // The live registry: healthy, its URL, its spaces counted and drawn.
    let live_row = row(&dom, "<tr class=\"registry\" id=\"registry-live\"");
    assert!(live_row.contains("Healthy"), "{live_row}");
    assert!(live_row.contains(&live.url()), "{live_row}");
    assert!(live_row.contains("Docker Registry"), "{live_row}");
    assert!(live_row.contains("3 found · 3 declared"), "{live_row}");
    // The stopped one: unhealthy, and why.
    let dead_row = row(&dom, "<tr class=\"registry\" id=\"registry-stopped\"");
    assert!(dead_row.contains("Unhealthy"), "{dead_row}");
    assert!(text.contains("cannot reach"), "{text}");
    assert!(dom.contains("class=\"pill bad\""), "unhealthy is drawn red");
    assert!(dom.contains("class=\"pill ok\""), "healthy is drawn green");

    // The spaces: visibility, bound workspaces, what the registry holds.
    let team_a = rows_with(&dom, "spaces", "team-a");
    assert_eq!(team_a.len(), 1, "{team_a:?}");
    for want in ["live", "Private", "ws-a", "exists", " 2 "] {
        assert!(team_a[0].contains(want), "{want:?} in {:?}", team_a[0]);
    }
    let tools = &rows_with(&dom, "spaces", "tools")[0];
    assert!(
        tools.contains("Public") && tools.contains("every namespace"),
        "{tools}"
    );
    let team_c = &rows_with(&dom, "spaces", "team-c")[0];
    assert!(
        team_c.contains("stopped") && team_c.contains("unknown"),
        "{team_c}"
    );

    // The workspaces with their namespaces and bound spaces.
    let ws_a = &rows_with(&dom, "workspaces", "ws-a")[0];
    for want in ["app-1", "app-2", "live/team-a", "stopped/team-c", "Enforce"] {
        assert!(ws_a.contains(want), "{want:?} in {ws_a:?}");
    }
    let ws_b = &rows_with(&dom, "workspaces", "ws-b")[0];
    assert!(ws_b.contains("app-3") && ws_b.contains("Warn"), "{ws_b}");

    // The denial, with the sentence the developer got; the allowed pod is not there.
    let denials = rows_with(&dom, "denials", "web-1");
    assert_eq!(denials.len(), 1, "{text}");
    let d = &denials[0];
    for want in [
        "deny",
        "Pod app-1/web-1",
        "alice",
        denied_image.as_str(),
        "not bound to a workspace of namespace \"app-1\"",
    ] {
        assert!(d.contains(want), "{want:?} in {d:?}");
    }
    assert!(!text.contains("fine-1"), "an allowed pod is not a denial");
    assert!(
        text.contains("No audit data"),
        "findings: the empty state until the audit reports"
    );

    // Never a credential.
    assert!(
        !dom.contains(USER.1),
        "the registry password is on the page"
    );

    let wide = screenshot(&url, "overview.png", "1400,1000");
    let laptop = screenshot(&url, "overview-laptop.png", "1280,800");
    assert_ne!(wide, laptop);
    screenshot(&url, "overview-full.png", "1400,2000");
}

#[test]
fn the_page_is_read_only_and_escapes_what_it_shows() {
    // A registry on a closed port is enough here; no real registry needed.
    let cfg = format!(
        "apiVersion: pullgate.io/v1alpha1\nkind: Registry\nmetadata: {{name: local}}\nspec: {{type: DockerRegistry, url: 'http://127.0.0.1:{}'}}\n",
        closed_port()
    );
    let b = Binary::start(&cfg, &["--ui-listen", "127.0.0.1:0"]);
    let ui = b.ui.expect("the overview page address is logged");

    for method in ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
        let (status, head, _) = http(ui, method, "/");
        assert_eq!(status, 405, "{method} /");
        assert!(head.contains("allow: get"), "{method}: {head}");
    }
    assert_eq!(http(ui, "POST", "/nowhere").0, 405, "non-GET first");
    for path in ["/nowhere", "/index.html", "/metrics", "//"] {
        assert_eq!(http(ui, "GET", path).0, 404, "GET {path}");
    }
    // Named by localhost or an address (as kubectl port-forward and a browser on it do),
    // never by another name (a site that rebinds its name to 127.0.0.1).
    for host in [
        "localhost:8081",
        "127.0.0.1:8081",
        "[::1]:8081",
        "127.0.0.1",
    ] {
        assert_eq!(http_to(ui, host, "GET", "/").0, 200, "Host: {host}");
    }
    for host in [
        "evil.example:8081",
        "evil.example",
        "localhost.evil.example",
    ] {
        assert_eq!(http_to(ui, host, "GET", "/").0, 403, "Host: {host}");
    }
    let (status, head, _) = http(ui, "GET", "/?refresh=1");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    // The one stylesheet is allowed by its hash, nothing inline besides it.
    let (_, _, page) = http(ui, "GET", "/");
    let css = page
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .expect("the page has its stylesheet")
        .0;
    let digest = ring::digest::digest(&ring::digest::SHA256, css.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    assert!(
        head.contains(&format!("style-src 'sha256-{}';", hash.to_lowercase()))
            && !head.contains("unsafe"),
        "{head}"
    );
    assert!(!page.contains(" style="), "no style attribute");

    // Hostile values from a request: an image reference and a pod name with markup.
    let r = validate(&b, "app-9", HOSTILE, HOSTILE);
    assert_eq!(r["allowed"], false, "{r}");
    let (_, _, body) = http(ui, "GET", "/");
    assert!(
        !body.contains("<img src=x"),
        "markup from a request reached the page"
    );
    assert!(
        !body.contains("<script>alert"),
        "markup from a request reached the page"
    );
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"),
        "the value is shown escaped:\n{body}"
    );

    // What a browser makes of it: the name as text, no element built from it.
    if chromium_available() {
        let dom = chromium(&format!("http://{ui}/"), &["--dump-dom"]);
        assert!(
            !dom.contains("<img"),
            "an <img> element was built from a name"
        );
        assert!(
            !dom.contains("<script"),
            "a <script> element was built from a name"
        );
        let text = text_of(&dom);
        assert!(text.contains(&format!("Pod app-9/{HOSTILE}")), "{text}");
    }
}

/// Cluster mode: the page lists the cluster's objects with the status the leader
/// recorded (this replica does not lead, so nothing is probed), and the denials this
/// replica served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_mode_the_page_shows_the_recorded_status() {
    use crate::support::*;

    let fake = FakeApiServer::start().await;
    let mut live = registry("live", "http://127.0.0.1:5000", &[]);
    live["status"] = json!({"health": "Healthy", "spaceCount": 2, "storageUsedBytes": 52428800,
        "lastProbeTime": "2026-01-01T00:00:00Z"});
    fake.put(live);
    let mut stopped = registry("stopped", "http://127.0.0.1:5001", &[]);
    stopped["status"] = json!({"health": "Unhealthy",
        "message": "cannot reach http://127.0.0.1:5001/v2/: connection refused"});
    fake.put(stopped);
    fake.put(space("live.team-a", "live", "team-a", "Private", &["ws-a"]));
    fake.put(space("live.team-b", "live", "team-b", "Private", &[]));
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    // Another replica holds the Lease for an hour: this one never probes or writes.
    lease_held_by_other(&fake);
    let server = fake.url();
    let b = tokio::task::spawn_blocking(move || {
        Binary::in_cluster(&server, "pullgate-1", &["--ui-listen", "127.0.0.1:0"])
    })
    .await
    .unwrap();
    let ui = b.ui.expect("the overview page address is logged");
    let (b, body) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::support::binary::probe_status(b.probe, "/readyz") != 200 {
            assert!(Instant::now() < deadline, "not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let r = validate(&b, "app-1", "api-7", "127.0.0.1:5000/team-b/api:1");
        assert_eq!(r["allowed"], false, "{r}");
        let (status, _, body) = http(ui, "GET", "/");
        assert_eq!(status, 200);
        (b, body)
    })
    .await
    .unwrap();
    let text = text_of(&body);
    assert!(text.contains("cluster mode"), "{text}");
    let live_row = row(&body, "<tr class=\"registry\" id=\"registry-live\"");
    for want in [
        "Healthy",
        "http://127.0.0.1:5000",
        "2 found · 2 declared",
        "50.0 MiB",
    ] {
        assert!(live_row.contains(want), "{want:?} in {live_row:?}");
    }
    let dead_row = row(&body, "<tr class=\"registry\" id=\"registry-stopped\"");
    assert!(dead_row.contains("Unhealthy"), "{dead_row}");
    assert!(
        text.contains("cannot reach http://127.0.0.1:5001/v2/"),
        "{text}"
    );
    let team_a = &rows_with(&body, "spaces", "team-a")[0];
    assert!(
        team_a.contains("Private") && team_a.contains("ws-a"),
        "{team_a}"
    );
    let team_b = &rows_with(&body, "spaces", "team-b")[0];
    assert!(team_b.contains("no namespace may pull"), "{team_b}");
    let ws_a = &rows_with(&body, "workspaces", "ws-a")[0];
    assert!(ws_a.contains("app-1") && ws_a.contains("app-2"), "{ws_a}");
    let denial = &rows_with(&body, "denials", "api-7")[0];
    assert!(
        denial.contains("Pod app-1/api-7") && denial.contains("127.0.0.1:5000/team-b/api:1"),
        "{denial}"
    );
    drop(b);
}
