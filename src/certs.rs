//! Certificates pullgate makes itself: a private CA and an ECDSA P-256 serving certificate
//! signed by it. Used by `pullgate certs` (development and the "own certificates"
//! overlay) and by `pullgate serve` when no certificate is given (standalone mode).
//!
//! Entry points: [`generate`] and [`write_to_dir`].

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// A serving certificate lives one year: long enough for a development cluster, short
/// enough that a forgotten one does not stay valid for ever.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// The CA outlives several leaf renewals, so the webhook's caBundle rarely changes.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Start validity a little in the past: the apiserver's clock may be behind ours.
const BACKDATE: Duration = Duration::hours(1);

/// File names written by [`write_to_dir`], the usual names of a Kubernetes TLS Secret.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// A CA and a serving certificate signed by it, all PEM encoded.
#[derive(Clone)]
pub struct GeneratedCerts {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for GeneratedCerts {
    // Private keys never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCerts")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("ca_key_pem", &"<redacted>")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Generates a CA (valid 10 years) and an ECDSA P-256 serving certificate (valid 1 year)
/// for `dns_names`; names that parse as an IP address become IP SANs. The first name is
/// also the certificate's common name.
pub fn generate(dns_names: &[String]) -> Result<GeneratedCerts> {
    let names = clean_names(dns_names)?;
    let now = OffsetDateTime::now_utc();

    let ca_key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating the CA key pair")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = common_name("pullgate CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - BACKDATE;
    ca_params.not_after = now + CA_VALIDITY;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("signing the CA certificate")?;

    let mut leaf_params = CertificateParams::new(names.clone()).with_context(|| {
        format!(
            "building a certificate for {names:?}: each name must be a DNS name or an IP address"
        )
    })?;
    leaf_params.distinguished_name = common_name(&names[0]);
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = now - BACKDATE;
    leaf_params.not_after = now + LEAF_VALIDITY;
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .context("generating the serving key pair")?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .context("signing the serving certificate")?;

    Ok(GeneratedCerts {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` into `dir` (created if missing).
/// Key files are readable by their owner only (mode 0600), also when they existed before.
pub fn write_to_dir(certs: &GeneratedCerts, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the certificate directory {}", dir.display()))?;
    write_file(&dir.join(CA_CERT_FILE), &certs.ca_cert_pem, false)?;
    write_file(&dir.join(CA_KEY_FILE), &certs.ca_key_pem, true)?;
    write_file(&dir.join(CERT_FILE), &certs.cert_pem, false)?;
    write_file(&dir.join(KEY_FILE), &certs.key_pem, true)?;
    Ok(())
}

fn clean_names(dns_names: &[String]) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for name in dns_names {
        let name = name.trim();
        if name.is_empty() {
            bail!("an empty name was given for the serving certificate; pass DNS names or IP addresses");
        }
        if rustls_pki_types::ServerName::try_from(name).is_err() {
            bail!(
                "{name:?} is neither a DNS name nor an IP address; it cannot be a certificate name"
            );
        }
        if seen.insert(name.to_owned()) {
            names.push(name.to_owned());
        }
    }
    if names.is_empty() {
        bail!(
            "the serving certificate needs at least one name, \
             e.g. --dns pullgate.pullgate-system.svc"
        );
    }
    Ok(names)
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // `mode` only applies to a new file; an existing key file gets tightened too.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting the permissions of {}", path.display()))?;
    }
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests;

/// `pullgate certs --out DIR --dns NAME...`: writes the files and prints the caBundle
/// (base64 of the CA certificate) for the webhook configurations. Returns the exit code.
pub fn run(args: &crate::cli::CertsArgs) -> i32 {
    let result = generate(&args.dns).and_then(|certs| {
        write_to_dir(&certs, &args.out)?;
        Ok(certs)
    });
    match result {
        Ok(certs) => {
            use base64::Engine;
            eprintln!(
                "wrote {CA_CERT_FILE}, {CA_KEY_FILE}, {CERT_FILE} and {KEY_FILE} to {}; caBundle:",
                args.out.display()
            );
            println!(
                "{}",
                base64::engine::general_purpose::STANDARD.encode(certs.ca_cert_pem)
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}
