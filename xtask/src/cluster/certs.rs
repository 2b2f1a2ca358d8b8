//! Linkerd's identity certificates: a trust anchor (the root CA of the mesh) and an issuer (the
//! intermediate CA that signs every proxy's certificate), ECDSA P-256 as Linkerd requires.
//! Generated once into the state folder and reused: new ones would break the running mesh.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// Names Linkerd expects for its default trust domain `cluster.local`.
pub const TRUST_ANCHOR_NAME: &str = "root.linkerd.cluster.local";
pub const ISSUER_NAME: &str = "identity.linkerd.cluster.local";
/// How long they are valid: ten years for the anchor, one for the issuer (as Linkerd's docs do).
const TRUST_ANCHOR_VALIDITY: Duration = Duration::days(3650);
const ISSUER_VALIDITY: Duration = Duration::days(365);

/// Where the three PEM files live.
#[derive(Debug)]
pub struct Files {
    pub trust_anchor: PathBuf,
    pub issuer_certificate: PathBuf,
    pub issuer_key: PathBuf,
}

impl Files {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            trust_anchor: dir.join("ca.crt"),
            issuer_certificate: dir.join("issuer.crt"),
            issuer_key: dir.join("issuer.key"),
        }
    }

    pub fn exist(&self) -> bool {
        self.trust_anchor.exists() && self.issuer_certificate.exists() && self.issuer_key.exists()
    }
}

/// Generated certificates, PEM-encoded.
pub struct Generated {
    pub trust_anchor_pem: String,
    pub issuer_certificate_pem: String,
    pub issuer_key_pem: String,
}

pub fn generate() -> anyhow::Result<Generated> {
    let now = OffsetDateTime::now_utc();
    let anchor_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let anchor = CertifiedIssuer::self_signed(
        ca_params(TRUST_ANCHOR_NAME, BasicConstraints::Unconstrained, now, TRUST_ANCHOR_VALIDITY),
        anchor_key,
    )?;
    let issuer_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let issuer_key_pem = issuer_key.serialize_pem();
    // The issuer signs leaf certificates only: path length 0.
    let issuer = CertifiedIssuer::signed_by(
        ca_params(ISSUER_NAME, BasicConstraints::Constrained(0), now, ISSUER_VALIDITY),
        issuer_key,
        &anchor,
    )?;
    Ok(Generated { trust_anchor_pem: anchor.pem(), issuer_certificate_pem: issuer.pem(), issuer_key_pem })
}

fn ca_params(name: &str, constraints: BasicConstraints, now: OffsetDateTime, validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, name);
    params.distinguished_name = distinguished_name;
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::minutes(5); // some slack for clocks that differ a little
    params.not_after = now + validity;
    params
}

/// Writes new certificates into `files`, unless they are there already (keeping the mesh's).
/// The key file is readable by its owner only.
pub fn ensure(files: &Files) -> anyhow::Result<bool> {
    if files.exist() {
        return Ok(false);
    }
    let generated = generate()?;
    let dir = files.trust_anchor.parent().context("certificates need a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&files.trust_anchor, generated.trust_anchor_pem)?;
    std::fs::write(&files.issuer_certificate, generated.issuer_certificate_pem)?;
    write_private(&files.issuer_key, &generated.issuer_key_pem)?;
    Ok(true)
}

#[cfg(unix)]
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    Ok(std::fs::write(path, text)?)
}

/// The step of `up` that makes them (kept when they are there).
#[derive(Debug)]
pub struct Generate(pub Files);

impl crate::steps::Action for Generate {
    fn describe(&self) -> Vec<String> {
        vec!["generate an ECDSA P-256 trust anchor and issuer with rcgen".into()]
    }

    fn run(&self) -> anyhow::Result<()> {
        ensure(&self.0).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use x509_parser::{pem::parse_x509_pem, prelude::*};

    use super::*;

    fn parse(pem: &str) -> Vec<u8> {
        parse_x509_pem(pem.as_bytes()).unwrap().1.contents
    }

    /// Parsed back with an X.509 parser: what Linkerd checks when it starts.
    #[test]
    fn the_trust_anchor_and_the_issuer_are_what_linkerd_requires() {
        let generated = generate().unwrap();
        let anchor_der = parse(&generated.trust_anchor_pem);
        let issuer_der = parse(&generated.issuer_certificate_pem);
        let (_, anchor) = X509Certificate::from_der(&anchor_der).unwrap();
        let (_, issuer) = X509Certificate::from_der(&issuer_der).unwrap();

        // ECDSA P-256 keys, ECDSA-SHA256 signatures.
        for certificate in [&anchor, &issuer] {
            assert_eq!(certificate.public_key().algorithm.algorithm, oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY);
            let curve = certificate.public_key().algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
            assert_eq!(curve, oid_registry::OID_EC_P256);
            assert_eq!(certificate.signature_algorithm.algorithm, oid_registry::OID_SIG_ECDSA_WITH_SHA256);
            assert!(certificate.is_ca());
            assert!(certificate.key_usage().unwrap().unwrap().value.key_cert_sign());
            assert!(certificate.validity().is_valid());
        }
        assert_eq!(anchor.subject().to_string(), format!("CN={TRUST_ANCHOR_NAME}"));
        assert_eq!(anchor.issuer(), anchor.subject(), "the anchor signs itself");
        assert_eq!(issuer.subject().to_string(), format!("CN={ISSUER_NAME}"));
        assert_eq!(issuer.issuer(), anchor.subject(), "the anchor signs the issuer");
        assert!(issuer.verify_signature(Some(anchor.public_key())).is_ok());
        assert_eq!(issuer.basic_constraints().unwrap().unwrap().value.path_len_constraint, Some(0));
        let year = 365 * 24 * 3600;
        assert!(issuer.validity().time_to_expiration().unwrap().whole_seconds() > year - 3600);
        assert!(anchor.validity().time_to_expiration().unwrap().whole_seconds() > 9 * year);
        assert!(generated.issuer_key_pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn existing_certificates_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::in_dir(dir.path());
        assert!(ensure(&files).unwrap(), "generated the first time");
        let before = std::fs::read_to_string(&files.trust_anchor).unwrap();
        assert!(!ensure(&files).unwrap(), "kept the second time");
        assert_eq!(std::fs::read_to_string(&files.trust_anchor).unwrap(), before);
    }
}
