//! A real Docker Registry (distribution 2.8, `docker-registry serve`) as a child process
//! on a free loopback port, optionally with htpasswd auth, and images pushed to it with
//! skopeo from a minimal OCI layout written here. The registry is stopped by its PID
//! when dropped.
//!
//! The binaries come from the Debian packages `docker-registry skopeo apache2-utils`
//! (installed by `tests/run.sh`). Without them [`tools_available`] fails the test when
//! `PULLGATE_REQUIRE_REAL_REGISTRY` is set (CI), and otherwise prints a notice so the
//! caller can skip.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const TOOLS: [&str; 3] = ["docker-registry", "skopeo", "htpasswd"];
pub const REQUIRE_ENV: &str = "PULLGATE_REQUIRE_REAL_REGISTRY";

/// Whether the registry, skopeo and htpasswd are installed; see the module doc.
pub fn tools_available() -> bool {
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "real-registry test needs {} (apt-get install -y docker-registry skopeo apache2-utils)",
        missing.join(", ")
    );
    if std::env::var_os(REQUIRE_ENV).is_some() {
        panic!("{msg}; {REQUIRE_ENV} is set, so this is a failure");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// How to start a registry.
#[derive(Default)]
pub struct Setup<'a> {
    /// The API needs these (htpasswd, bcrypt).
    pub credentials: Option<(&'a str, &'a str)>,
    /// More htpasswd users.
    pub extra_users: &'a [(&'a str, &'a str)],
    /// Serve HTTPS with this certificate.
    pub tls: Option<&'a TestTls>,
}

/// A test CA and a serving certificate for `127.0.0.1` signed by it (PEM).
pub struct TestTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestTls {
    pub fn new() -> TestTls {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pullgate test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .signed_by(&leaf_key, &ca)
            .expect("certificate");
        TestTls {
            ca_pem: ca.pem(),
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        }
    }
}

/// A running registry.
pub struct RealRegistry {
    pub port: u16,
    pub credentials: Option<(String, String)>,
    pub https: bool,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RealRegistry {
    /// Starts a registry; with `credentials`, its API needs them (htpasswd, bcrypt).
    pub fn start(credentials: Option<(&str, &str)>) -> RealRegistry {
        Self::start_with(Setup {
            credentials,
            ..Setup::default()
        })
    }

    /// Like [`start`](Self::start), with more htpasswd users (e.g. a robot-style login).
    pub fn start_with_users(
        credentials: Option<(&str, &str)>,
        extra_users: &[(&str, &str)],
    ) -> RealRegistry {
        Self::start_with(Setup {
            credentials,
            extra_users,
            tls: None,
        })
    }

    /// Starts a registry as `setup` says.
    pub fn start_with(setup: Setup<'_>) -> RealRegistry {
        let Setup {
            credentials,
            extra_users,
            tls,
        } = setup;
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut auth = String::new();
        if let Some((user, pass)) = credentials {
            let htpasswd = dir.path().join("htpasswd");
            let mut lines = String::new();
            for (u, p) in std::iter::once((user, pass)).chain(extra_users.iter().copied()) {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed");
                lines.push_str(String::from_utf8_lossy(&out.stdout).trim());
                lines.push('\n');
            }
            std::fs::write(&htpasswd, lines).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: pullgate-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let mut tls_config = String::new();
        if let Some(tls) = tls {
            let cert = dir.path().join("tls.crt");
            let key = dir.path().join("tls.key");
            std::fs::write(&cert, &tls.cert_pem).expect("write cert");
            std::fs::write(&key, &tls.key_pem).expect("write key");
            tls_config = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: pullgate-test-secret\n{tls_config}{auth}",
            data.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        // Reads the log until the end so the registry never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = listening_port(&line) {
                    let _ = tx.send(Ok(port));
                } else if line.contains("level=fatal") || line.contains("level=panic") {
                    let _ = tx.send(Err(line));
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(port)) => port,
            Ok(Err(line)) => {
                let _ = child.kill();
                panic!("docker-registry failed: {line}");
            }
            Err(_) => {
                let _ = child.kill();
                panic!("docker-registry did not report its port");
            }
        };
        RealRegistry {
            port,
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
            https: tls.is_some(),
            child: Some(child),
            dir,
        }
    }

    /// `host:port` as image references spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// Kills the registry by its PID and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pushes a small image to `repository:tag` with skopeo.
    pub fn push(&self, repository: &str, tag: &str) {
        let layout = self.dir.path().join("layout");
        if !layout.join("index.json").exists() {
            write_oci_layout(&layout, "latest");
        }
        let mut cmd = skopeo(self.dir.path());
        cmd.args(["copy", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.credentials {
            cmd.arg("--dest-creds").arg(format!("{u}:{p}"));
        }
        cmd.arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repository}:{tag}", self.host()));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to {repository}:{tag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `skopeo inspect` of an image with a dockerconfigjson auth file; Ok or skopeo's error.
    pub fn inspect_with_authfile(&self, image: &str, authfile: &Path) -> Result<(), String> {
        let out = skopeo(self.dir.path())
            .args(["inspect", "--tls-verify=false", "--authfile"])
            .arg(authfile)
            .arg(format!("docker://{}/{image}", self.host()))
            .output()
            .expect("run skopeo");
        succeeded(out)
    }

    /// `skopeo copy` (a pull) of an image into an OCI layout, with a dockerconfigjson auth
    /// file; Ok or skopeo's error.
    pub fn pull_with_authfile(&self, image: &str, authfile: &Path) -> Result<(), String> {
        let into = self.dir.path().join("pulled");
        let _ = std::fs::remove_dir_all(&into);
        let out = skopeo(self.dir.path())
            .args(["copy", "--src-tls-verify=false", "--src-authfile"])
            .arg(authfile)
            .arg(format!("docker://{}/{image}", self.host()))
            .arg(format!("oci:{}:pulled", into.display()))
            .output()
            .expect("run skopeo");
        succeeded(out)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// skopeo with an empty home, so no stored credentials or policy of the machine count.
fn skopeo(dir: &Path) -> Command {
    let home = dir.join("home");
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = Command::new("skopeo");
    cmd.env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .env_remove("REGISTRY_AUTH_FILE")
        .arg("--insecure-policy");
    cmd
}

/// The port of a `msg="listening on 127.0.0.1:<port>"` log line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

fn sha256(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A tar archive with one regular file.
fn tar_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mut field = |at: usize, value: &str| {
        header[at..at + value.len()].copy_from_slice(value.as_bytes());
    };
    field(100, "0000644\0"); // mode
    field(108, "0000000\0"); // uid
    field(116, "0000000\0"); // gid
    field(124, &format!("{:011o}\0", content.len()));
    field(136, "00000000000\0"); // mtime
    field(156, "0"); // regular file
    field(257, "ustar\0");
    field(263, "00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// gzip with stored (uncompressed) deflate blocks: valid, and needs no compressor.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i == chunks.len() - 1));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Writes a minimal OCI image layout (one gzip layer, config, manifest, index.json,
/// oci-layout) tagged `tag` into `dir`.
pub fn write_oci_layout(dir: &Path, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs dir");
    let put = |data: &[u8]| -> String {
        let digest = sha256(data);
        let file = blobs.join(digest.trim_start_matches("sha256:"));
        std::fs::write(file, data).expect("write blob");
        digest
    };
    let tar = tar_one_file("hello.txt", b"hello from pullgate\n");
    let layer = gzip_stored(&tar);
    let layer_digest = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
    })
    .to_string();
    let config_digest = put(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    })
    .to_string();
    let manifest_digest = put(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}

/// Ok when skopeo succeeded, else what it said.
fn succeeded(out: std::process::Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The standalone configuration the overview tests (`overview_cli`, `ui`) show: two
/// Docker Registries, `live` (the running `registry`, its API login `user` in a Secret
/// of the configuration) and `stopped` (on `dead`, a port where nothing listens);
/// private spaces live.team-a (bound to ws-a), live.team-b (ws-b) and stopped.team-c
/// (ws-a), public live.tools; workspaces ws-a {app-1, app-2} and ws-b {app-3, Warn}.
pub fn overview_config(registry: &RealRegistry, user: (&str, &str), dead: u16) -> String {
    use super::{basic_auth_secret, space, workspace, OWN_NS};
    let mut live = super::registry("live", &registry.url(), &[]);
    live["spec"]["credentialsSecretRef"] =
        serde_json::json!({"namespace": OWN_NS, "name": "live-api"});
    let mut ws_b = workspace("ws-b", &["app-3"], None);
    ws_b["spec"]["enforcement"] = "Warn".into();
    let documents = [
        live,
        basic_auth_secret(OWN_NS, "live-api", user.0, user.1),
        super::registry("stopped", &format!("http://127.0.0.1:{dead}"), &[]),
        space("live.team-a", "live", "team-a", "Private", &["ws-a"]),
        space("live.team-b", "live", "team-b", "Private", &["ws-b"]),
        space("live.tools", "live", "tools", "Public", &[]),
        space("stopped.team-c", "stopped", "team-c", "Private", &["ws-a"]),
        workspace("ws-a", &["app-1", "app-2"], None),
        ws_b,
    ];
    // JSON is YAML: one document per object.
    documents.map(|d| d.to_string()).join("\n---\n")
}
