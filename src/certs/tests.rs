use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::RootCertStore;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
}

fn verifier(ca_pem: &str) -> Arc<WebPkiServerVerifier> {
    let mut roots = RootCertStore::empty();
    roots.add(der(ca_pem)).expect("CA accepted as a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .expect("verifier")
}

#[test]
fn serving_cert_is_trusted_by_its_ca_for_every_name() {
    let certs = generate(&names(&[
        "pullgate.pullgate-system.svc",
        "localhost",
        "127.0.0.1",
    ]))
    .expect("generate");
    let verifier = verifier(&certs.ca_cert_pem);
    let leaf = der(&certs.cert_pem);
    for name in ["pullgate.pullgate-system.svc", "localhost", "127.0.0.1"] {
        let server_name = ServerName::try_from(name).expect("name");
        verifier
            .verify_server_cert(&leaf, &[], &server_name, &[], UnixTime::now())
            .unwrap_or_else(|e| panic!("{name} not trusted: {e}"));
    }
    let other = ServerName::try_from("other.example.com").expect("name");
    assert!(verifier
        .verify_server_cert(&leaf, &[], &other, &[], UnixTime::now())
        .is_err());
}

#[test]
fn sans_validity_and_key_type() {
    let certs = generate(&names(&["webhook.svc", "10.0.0.7", "::1"])).expect("generate");
    let leaf_der = der(&certs.cert_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).expect("x509");
    let san = leaf
        .subject_alternative_name()
        .expect("parse SAN")
        .expect("SAN present");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(ip) => ips.push(ip.to_vec()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns, vec!["webhook.svc"]);
    assert_eq!(
        ips,
        vec![
            vec![10, 0, 0, 7],
            std::net::Ipv6Addr::LOCALHOST.octets().to_vec()
        ]
    );
    assert!(!leaf.is_ca());
    // P-256 public key: 65-byte uncompressed point.
    assert_eq!(leaf.public_key().subject_public_key.data.len(), 65);

    let days = |c: &X509Certificate<'_>| {
        (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86_400
    };
    assert_eq!(days(&leaf), 365);
    let ca_der = der(&certs.ca_cert_pem);
    let (_, ca) = X509Certificate::from_der(&ca_der).expect("x509");
    assert!(ca.is_ca());
    assert_eq!(days(&ca), 3650);
    assert_eq!(leaf.issuer(), ca.subject());
}

#[test]
fn keys_belong_to_their_certificates() {
    let certs = generate(&names(&["localhost"])).expect("generate");
    let provider = rustls::crypto::ring::default_provider();
    for (cert, key) in [
        (&certs.cert_pem, &certs.key_pem),
        (&certs.ca_cert_pem, &certs.ca_key_pem),
    ] {
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM");
        let signing = provider.key_provider.load_private_key(key).expect("key");
        rustls::sign::CertifiedKey::new(vec![der(cert)], signing)
            .keys_match()
            .expect("key matches certificate");
    }
}

#[test]
fn each_generation_is_a_new_pair() {
    let a = generate(&names(&["localhost"])).expect("generate");
    let b = generate(&names(&["localhost"])).expect("generate");
    let serial = |pem: &str| {
        let d = der(pem);
        let (_, c) = X509Certificate::from_der(&d).expect("x509");
        c.raw_serial().to_vec()
    };
    assert_ne!(serial(&a.cert_pem), serial(&b.cert_pem));
    assert_ne!(a.key_pem, b.key_pem);
}

#[test]
fn names_are_checked_and_deduplicated() {
    assert!(generate(&[]).is_err());
    assert!(generate(&names(&[" "])).is_err());
    let err = generate(&names(&["bad name"])).expect_err("space in a name");
    assert!(err.to_string().contains("bad name"), "{err}");
    let certs = generate(&names(&["localhost", "localhost", "127.0.0.1"])).expect("dedupe");
    let d = der(&certs.cert_pem);
    let (_, leaf) = X509Certificate::from_der(&d).expect("x509");
    let san = leaf.subject_alternative_name().expect("SAN").expect("SAN");
    assert_eq!(san.value.general_names.len(), 2);
}

#[test]
fn debug_redacts_private_keys() {
    let certs = generate(&names(&["localhost"])).expect("generate");
    let shown = format!("{certs:?}");
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains("PRIVATE KEY"));
}

#[cfg(unix)]
#[test]
fn write_to_dir_writes_four_files_with_private_keys() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("out");
    // A key file left from an earlier run with loose permissions gets tightened.
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(KEY_FILE), "old").expect("old key");
    std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");

    let certs = generate(&names(&["localhost"])).expect("generate");
    write_to_dir(&certs, &dir).expect("write");

    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("read");
    assert_eq!(read(CA_CERT_FILE), certs.ca_cert_pem);
    assert_eq!(read(CA_KEY_FILE), certs.ca_key_pem);
    assert_eq!(read(CERT_FILE), certs.cert_pem);
    assert_eq!(read(KEY_FILE), certs.key_pem);
    let mode = |f: &str| {
        std::fs::metadata(dir.join(f))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(CA_KEY_FILE), 0o600);
    assert_eq!(mode(KEY_FILE), 0o600);
}
