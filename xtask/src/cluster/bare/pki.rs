//! The bare cluster's certificates, made by xtask with rcgen (as Linkerd's are, in `certs`): one
//! cluster CA; the API server's serving certificate; a client certificate per component, whose
//! subject is the identity Kubernetes' built-in RBAC roles are bound to; and the service
//! accounts' signing key. Made once and kept: new ones would lock the running cluster out.
//!
//! Identities (kubernetes.io/docs/setup/best-practices/certificates/, "Configure certificates
//! for user accounts"): `system:kube-controller-manager`, `system:kube-scheduler`,
//! `system:kube-proxy` (bound to `system:node-proxier`), the kubelet as `system:node:<node>` in
//! group `system:nodes` (the Node authorizer), the admin in `system:masters`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::{API_SERVICE_IP, NODE_IP, NODE_NAME};
use crate::cluster::certs::write_private;

const VALIDITY: Duration = Duration::days(365);

/// Who a client certificate says its holder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Admin,
    ControllerManager,
    Scheduler,
    KubeProxy,
    Kubelet,
    /// The API server, when it calls the kubelet (logs, exec).
    ApiServerToKubelet,
}

impl Identity {
    pub const ALL: [Identity; 6] = [
        Identity::Admin,
        Identity::ControllerManager,
        Identity::Scheduler,
        Identity::KubeProxy,
        Identity::Kubelet,
        Identity::ApiServerToKubelet,
    ];

    /// The file name stem of its certificate and key.
    pub fn file(self) -> &'static str {
        match self {
            Identity::Admin => "admin",
            Identity::ControllerManager => "kube-controller-manager",
            Identity::Scheduler => "kube-scheduler",
            Identity::KubeProxy => "kube-proxy",
            Identity::Kubelet => "kubelet",
            Identity::ApiServerToKubelet => "apiserver-kubelet-client",
        }
    }

    /// The certificate's common name and organisation: user and group to Kubernetes.
    pub fn subject(self) -> (String, &'static str) {
        match self {
            Identity::Admin => ("workshop-admin".into(), "system:masters"),
            Identity::ControllerManager => ("system:kube-controller-manager".into(), ""),
            Identity::Scheduler => ("system:kube-scheduler".into(), ""),
            Identity::KubeProxy => ("system:kube-proxy".into(), ""),
            Identity::Kubelet => (format!("system:node:{NODE_NAME}"), "system:nodes"),
            // kubeadm puts this one in system:masters too; it only needs to reach the kubelet,
            // whose authorization is AlwaysAllow for clients the CA signed.
            Identity::ApiServerToKubelet => ("kube-apiserver-kubelet-client".into(), ""),
        }
    }
}

/// The files, in `.state/bare/pki/`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn apiserver(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("apiserver.crt"), self.dir.join("apiserver.key"))
    }
    pub fn client(&self, identity: Identity) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{}.crt", identity.file())), self.dir.join(format!("{}.key", identity.file())))
    }
    /// The key that signs service account tokens.
    pub fn service_account_key(&self) -> PathBuf {
        self.dir.join("service-account.key")
    }
    /// Its public half, which checks them.
    pub fn service_account_public_key(&self) -> PathBuf {
        self.dir.join("service-account.pub")
    }

    fn all(&self) -> Vec<PathBuf> {
        let mut files = vec![
            self.ca(),
            self.ca_key(),
            self.apiserver().0,
            self.apiserver().1,
            self.service_account_key(),
            self.service_account_public_key(),
        ];
        for identity in Identity::ALL {
            let (certificate, key) = self.client(identity);
            files.extend([certificate, key]);
        }
        files
    }

    pub fn exists(&self) -> bool {
        self.all().iter().all(|file| file.is_file())
    }

    /// Makes every certificate, unless all are there already. Returns whether it made them.
    pub fn ensure(&self) -> anyhow::Result<bool> {
        if self.exists() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let now = OffsetDateTime::now_utc();
        let mut ca_params = params("workshop-bare-cluster-ca", "", now);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
        std::fs::write(self.ca(), ca.pem())?;
        write_private(&self.ca_key(), &ca_key_pem)?;

        let mut serving = params("kube-apiserver", "", now);
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.subject_alt_names = vec![
            SanType::IpAddress(NODE_IP.into()),
            SanType::IpAddress(API_SERVICE_IP.into()),
            SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        ];
        for name in
            ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
        {
            serving.subject_alt_names.push(SanType::DnsName(name.try_into()?));
        }
        let (certificate, key) = self.apiserver();
        sign(serving, &ca, &certificate, &key)?;

        for identity in Identity::ALL {
            let (name, group) = identity.subject();
            let mut client = params(&name, group, now);
            client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let (certificate, key) = self.client(identity);
            sign(client, &ca, &certificate, &key)?;
        }
        // ECDSA P-256 (rcgen's default): the API server signs tokens with ES256.
        let signing = KeyPair::generate()?;
        write_private(&self.service_account_key(), &signing.serialize_pem())?;
        std::fs::write(self.service_account_public_key(), signing.public_key_pem())?;
        Ok(true)
    }
}

fn params(common_name: &str, organisation: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    if !organisation.is_empty() {
        name.push(DnType::OrganizationName, organisation);
    }
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + VALIDITY;
    params
}

fn sign(
    params: CertificateParams,
    ca: &CertifiedIssuer<'_, KeyPair>,
    certificate: &Path,
    key: &Path,
) -> anyhow::Result<()> {
    let key_pair = KeyPair::generate()?;
    let signed = params.signed_by(&key_pair, ca)?;
    std::fs::write(certificate, signed.pem()).with_context(|| format!("cannot write {}", certificate.display()))?;
    write_private(key, &key_pair.serialize_pem())
}

#[cfg(test)]
mod tests {
    use x509_parser::{pem::parse_x509_pem, prelude::*};

    use super::*;

    fn der(path: &Path) -> Vec<u8> {
        parse_x509_pem(&std::fs::read(path).unwrap()).unwrap().1.contents
    }

    /// Parsed back: the identities Kubernetes' RBAC expects, all signed by the one CA, and the
    /// serving certificate valid for every address a client uses.
    #[test]
    fn every_component_gets_its_identity_from_one_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir: dir.path().into() };
        assert!(pki.ensure().unwrap());
        let ca_der = der(&pki.ca());
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        assert!(ca.is_ca());
        let kubelet_der = der(&pki.client(Identity::Kubelet).0);
        let (_, kubelet) = X509Certificate::from_der(&kubelet_der).unwrap();
        assert_eq!(kubelet.subject().to_string(), format!("CN=system:node:{NODE_NAME}, O=system:nodes"));
        assert!(kubelet.verify_signature(Some(ca.public_key())).is_ok());
        let admin_der = der(&pki.client(Identity::Admin).0);
        let (_, admin) = X509Certificate::from_der(&admin_der).unwrap();
        assert!(admin.subject().to_string().ends_with("O=system:masters"), "{}", admin.subject());
        let serving_der = der(&pki.apiserver().0);
        let (_, serving) = X509Certificate::from_der(&serving_der).unwrap();
        let names = format!("{:?}", serving.subject_alternative_name().unwrap().unwrap().value.general_names);
        for expected in ["10.200.0.1", "10.96.0.1", "127.0.0.1", "kubernetes.default.svc.cluster.local"] {
            let shown = expected.split('.').map(|part| part.to_owned()).collect::<Vec<_>>();
            let as_ip = shown.iter().all(|part| part.parse::<u8>().is_ok());
            let found = if as_ip {
                names.contains(&format!("IPAddress([{}])", shown.join(", ")))
            } else {
                names.contains(expected)
            };
            assert!(found, "{expected} missing from {names}");
        }
        assert!(!pki.ensure().unwrap(), "kept the second time");
    }
}
