//! `pullgate serve` as a child process: bound ports read from its log, audit lines
//! (stdout) collected, reviews posted over TLS.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use pullgate::admission::testing::*;
use serde_json::Value;

use super::webhook::post_tls;

/// `pullgate serve` as a child process, with its audit lines (stdout) collected.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub probe: SocketAddr,
    /// The overview page, when started with `--ui-listen`.
    pub ui: Option<SocketAddr>,
    pub ca_pem: String,
    pub audit: Arc<Mutex<Vec<String>>>,
    /// Every line the process wrote on stderr (its ordinary log).
    pub log: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

impl Binary {
    /// Standalone: `config` is written to `config.yaml` in the binary's temp dir.
    pub fn start(config: &str, extra: &[&str]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, config).unwrap();
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        args.extend_from_slice(extra);
        Self::start_in(dir, &args, &[])
    }

    /// Cluster mode as pod `pod` in pullgate's namespace ([`super::OWN_NS`]), with
    /// `extra` arguments: a kubeconfig in the binary's temp dir points it at `server`
    /// (the fake apiserver).
    pub fn in_cluster(server: &str, pod: &str, extra: &[&str]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let config = super::kubeconfig(dir.path(), server);
        let config = config.to_str().unwrap().to_string();
        let mut args = vec!["--namespace", super::OWN_NS];
        args.extend_from_slice(extra);
        Self::start_in(dir, &args, &[("KUBECONFIG", &config), ("POD_NAME", pod)])
    }

    /// `pullgate serve` on ephemeral ports with `args` and `env`, files in `dir`.
    pub fn start_in(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let ca = dir.path().join("ca.crt");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--probe-listen",
                "127.0.0.1:0",
                "--reload-interval",
                "100ms",
            ])
            .arg("--ca-out")
            .arg(&ca)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pullgate serve");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            // The page's port is bound (and logged) before the admission port.
            let mut ui = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("pullgate: {line}");
                let field = |name: &str| -> SocketAddr {
                    let rest = &line[line.find(&format!("{name}=")).unwrap() + name.len() + 1..];
                    rest.split_whitespace().next().unwrap().parse().unwrap()
                };
                if line.contains("serving the overview page") {
                    ui = Some(field("ui"));
                }
                kept.lock().unwrap().push(line.clone());
                if line.contains("serving admission requests") {
                    let _ = tx.send((field("listen"), field("probe"), ui));
                }
            }
        });
        let audit = Arc::new(Mutex::new(Vec::new()));
        let sink = audit.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (addr, probe, ui) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server started");
        let ca_pem = std::fs::read_to_string(&ca).unwrap();
        Binary {
            child,
            addr,
            probe,
            ui,
            ca_pem,
            audit,
            log,
            dir,
        }
    }

    /// Waits until the probe port says ready (in cluster mode: after the first sync).
    pub async fn ready(&self) {
        let probe = self.probe;
        super::wait_until("ready after the first sync", || {
            probe_status(probe, "/readyz") == 200
        })
        .await;
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("config.yaml")
    }

    pub fn allowed(&self, ns: &str, image: &str) -> bool {
        let body = in_ns(
            review("Pod", "CREATE", object("Pod", pod_spec(&[image])), None),
            ns,
        );
        let (status, body) = post_tls(
            self.addr,
            &self.ca_pem,
            "/validate",
            body.to_string().as_bytes(),
        )
        .expect("response");
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["response"]["allowed"].as_bool().unwrap()
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status of a plain-HTTP GET on the probe port.
pub fn probe_status(addr: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
