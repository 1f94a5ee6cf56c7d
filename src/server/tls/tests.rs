use std::os::unix::fs::symlink;

use super::*;
use crate::certs::{generate, GeneratedCerts};

fn pair() -> GeneratedCerts {
    generate(&["localhost".to_owned()]).expect("generate")
}

fn serial_of(certs: &GeneratedCerts) -> String {
    let der = CertificateDer::from_pem_slice(certs.cert_pem.as_bytes()).expect("PEM");
    cert_info(&der).expect("x509").serial
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new())
}

fn expiry_of(certs: &GeneratedCerts) -> f64 {
    let der = CertificateDer::from_pem_slice(certs.cert_pem.as_bytes()).expect("PEM");
    let not_after = cert_info(&der).expect("x509").not_after;
    not_after
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as f64
}

fn current_serial(resolver: &CertResolver) -> String {
    let key = resolver.current.load_full();
    cert_info(key.end_entity_cert().expect("leaf"))
        .expect("x509")
        .serial
}

/// A Secret volume: `dir/..<stamp>/tls.*`, `dir/..data -> ..<stamp>`, `dir/tls.* -> ..data/tls.*`.
struct SecretVolume {
    dir: tempfile::TempDir,
    generation: u32,
}

impl SecretVolume {
    fn new(certs: &GeneratedCerts) -> Self {
        let mut volume = SecretVolume {
            dir: tempfile::tempdir().expect("tempdir"),
            generation: 0,
        };
        volume.update(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes());
        for name in ["tls.crt", "tls.key"] {
            symlink(format!("..data/{name}"), volume.dir.path().join(name)).expect("symlink");
        }
        volume
    }

    fn update(&mut self, cert: &[u8], key: &[u8]) {
        self.generation += 1;
        let stamp = format!("..2026_01_01_00_00_{:02}", self.generation);
        let data = self.dir.path().join(&stamp);
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("tls.crt"), cert).expect("write");
        std::fs::write(data.join("tls.key"), key).expect("write");
        let tmp = self.dir.path().join("..data_tmp");
        symlink(&stamp, &tmp).expect("symlink");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("rename");
    }

    fn source(&self) -> TlsSource {
        TlsSource::Files {
            cert: self.dir.path().join("tls.crt"),
            key: self.dir.path().join("tls.key"),
        }
    }
}

#[test]
fn only_tls12_and_tls13_with_http11_alpn() {
    let versions: Vec<_> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(
        versions,
        vec![
            rustls::ProtocolVersion::TLSv1_3,
            rustls::ProtocolVersion::TLSv1_2
        ]
    );
    let certs = pair();
    let loaded = parse_pair(
        certs.cert_pem.as_bytes(),
        certs.key_pem.as_bytes(),
        Path::new("c"),
        Path::new("k"),
    )
    .expect("pair");
    let config = server_config(Arc::new(CertResolver::new(loaded.key))).expect("config");
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn a_good_pair_loads_with_its_serial() {
    let certs = pair();
    let loaded = parse_pair(
        certs.cert_pem.as_bytes(),
        certs.key_pem.as_bytes(),
        Path::new("c"),
        Path::new("k"),
    )
    .expect("pair");
    assert_eq!(loaded.info.serial, serial_of(&certs));
    assert!(loaded.info.not_after > SystemTime::now());
    assert!(loaded.info.serial.contains(':'));
}

#[test]
fn bad_pairs_name_the_file_to_fix() {
    let a = pair();
    let b = pair();
    let cert = Path::new("/etc/pullgate/tls.crt");
    let key = Path::new("/etc/pullgate/tls.key");
    let check = |cert_pem: &str, key_pem: &str, want: &str, names: &[&Path]| {
        let err = parse_pair(cert_pem.as_bytes(), key_pem.as_bytes(), cert, key)
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(text.contains(want), "{text:?} should say {want:?}");
        for path in names {
            assert!(
                text.contains(&path.display().to_string()),
                "{text:?} should name {path:?}"
            );
        }
    };
    check(&a.cert_pem, &b.key_pem, "does not belong to", &[cert, key]);
    check("", &a.key_pem, "holds no certificate", &[cert]);
    check("garbage", &a.key_pem, "holds no certificate", &[cert]);
    check(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        &a.key_pem,
        "not valid X.509",
        &[cert],
    );
    check(&a.cert_pem, "", "no usable private key", &[key]);
    check(&a.cert_pem, &a.cert_pem, "no usable private key", &[key]);
    check(
        &a.cert_pem,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "no usable private key",
        &[key],
    );
}

#[test]
fn missing_files_are_reported_before_anything_is_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = TlsSource::Files {
        cert: dir.path().join("missing.crt"),
        key: dir.path().join("missing.key"),
    };
    let err = prepare(&source, &metrics())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("missing.crt"), "{err}");
}

#[test]
fn self_signed_writes_its_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_out = dir.path().join("ca.crt");
    let (resolver, reloader) = prepare(
        &TlsSource::SelfSigned {
            ca_out: Some(ca_out.clone()),
        },
        &metrics(),
    )
    .expect("self-signed");
    assert!(reloader.is_none());
    let ca = std::fs::read(&ca_out).expect("CA written");
    assert!(CertificateDer::from_pem_slice(&ca).is_ok());
    assert!(!current_serial(&resolver).is_empty());
}

#[tokio::test]
async fn reload_follows_a_secret_volume_and_keeps_the_old_pair_on_errors() {
    let (a, b, c) = (pair(), pair(), pair());
    let mut volume = SecretVolume::new(&a);
    let metrics = metrics();
    let (resolver, reloader) = prepare(&volume.source(), &metrics).expect("pair A");
    let failures = "pullgate_certificate_reload_failures_total";
    let expiry = "pullgate_certificate_expiry_timestamp_seconds";
    assert_eq!(metrics.sample(expiry), expiry_of(&a));
    let mut reloader = reloader.expect("files are reloaded");
    assert_eq!(current_serial(&resolver), serial_of(&a));
    assert!(matches!(reloader.check().await, ReloadOutcome::Unchanged));

    volume.update(b.cert_pem.as_bytes(), b.key_pem.as_bytes());
    match reloader.check().await {
        ReloadOutcome::Reloaded(info) => assert_eq!(info.serial, serial_of(&b)),
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(current_serial(&resolver), serial_of(&b));
    assert_eq!(metrics.sample(expiry), expiry_of(&b));
    assert_eq!(metrics.sample(failures), 0.0);

    // A broken pair (garbage key, then a key of another certificate) is ignored.
    volume.update(c.cert_pem.as_bytes(), b"garbage");
    assert!(matches!(reloader.check().await, ReloadOutcome::Kept(_)));
    volume.update(c.cert_pem.as_bytes(), a.key_pem.as_bytes());
    assert!(matches!(reloader.check().await, ReloadOutcome::Kept(_)));
    assert_eq!(current_serial(&resolver), serial_of(&b));
    // Each broken pair counts once, however often it is looked at; the expiry is still
    // the pair in use.
    assert!(matches!(reloader.check().await, ReloadOutcome::Unchanged));
    assert_eq!(metrics.sample(failures), 2.0);
    assert_eq!(metrics.sample(expiry), expiry_of(&b));

    volume.update(c.cert_pem.as_bytes(), c.key_pem.as_bytes());
    assert!(matches!(reloader.check().await, ReloadOutcome::Reloaded(_)));
    assert_eq!(current_serial(&resolver), serial_of(&c));
}

#[tokio::test]
async fn vanished_files_keep_the_old_pair() {
    let a = pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &a.cert_pem).expect("write");
    std::fs::write(&key, &a.key_pem).expect("write");
    let (resolver, reloader) = prepare(
        &TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        &metrics(),
    )
    .expect("pair");
    let mut reloader = reloader.expect("reloader");
    std::fs::remove_file(&key).expect("rm");
    match reloader.check().await {
        ReloadOutcome::Kept(reason) => assert!(reason.contains("tls.key"), "{reason}"),
        other => panic!("expected the old pair kept, got {other:?}"),
    }
    assert_eq!(current_serial(&resolver), serial_of(&a));
    // Restoring the same content is no change at all.
    std::fs::write(&key, &a.key_pem).expect("write");
    assert!(matches!(reloader.check().await, ReloadOutcome::Unchanged));
}
