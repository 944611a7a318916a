//! The control plane's certificates: a CA, the API server's serving certificate signed by it, an
//! admin client certificate (`system:masters`), and the service-account signing key.
//!
//! A real CA rather than a self-signed leaf: kube-rs's rustls backend refuses a leaf certificate
//! used as its own CA.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The names the API server answers to: loopback, and the in-cluster service names.
const SERVING_NAMES: [&str; 7] = [
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    // The first address of the service range, the `kubernetes` service's cluster IP.
    "10.0.0.1",
];

/// Where the PEM files are.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate.
    pub ca_certificate: PathBuf,
    /// The API server's certificate.
    pub serving_certificate: PathBuf,
    /// The API server's key.
    pub serving_key: PathBuf,
    /// The admin client certificate (CN `admin`, O `system:masters`).
    pub admin_certificate: PathBuf,
    /// The admin client key.
    pub admin_key: PathBuf,
    /// The service-account signing key.
    pub service_account_key: PathBuf,
    /// Its public half, which the API server verifies tokens with.
    pub service_account_public_key: PathBuf,
}

/// A failure to make or write a certificate.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters.
    #[error("cannot make the {what}: {source}")]
    Certificate {
        /// Which certificate or key.
        what: &'static str,
        /// Why.
        source: rcgen::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn certificate_error(what: &'static str) -> impl Fn(rcgen::Error) -> PkiError {
    move |source| PkiError::Certificate { what, source }
}

/// Makes the CA, the certificates and keys, and writes them as PEM files into `directory`.
pub fn create(directory: &Path) -> Result<Pki, PkiError> {
    let ca_key = KeyPair::generate().map_err(certificate_error("CA key"))?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("tandem-test-ca", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_certificate = ca_params
        .self_signed(&ca_key)
        .map_err(certificate_error("CA"))?;
    let ca = Issuer::new(ca_params, ca_key);

    let serving_names: Vec<String> = SERVING_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let mut serving =
        CertificateParams::new(serving_names).map_err(certificate_error("serving"))?;
    serving.distinguished_name = name("kube-apiserver", None);
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_key = KeyPair::generate().map_err(certificate_error("serving key"))?;
    let serving_certificate = serving
        .signed_by(&serving_key, &ca)
        .map_err(certificate_error("serving"))?;

    let mut admin = CertificateParams::default();
    admin.distinguished_name = name("admin", Some("system:masters"));
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_key = KeyPair::generate().map_err(certificate_error("admin key"))?;
    let admin_certificate = admin
        .signed_by(&admin_key, &ca)
        .map_err(certificate_error("admin"))?;

    let service_account_key =
        KeyPair::generate().map_err(certificate_error("service-account key"))?;

    let pki = Pki {
        ca_certificate: directory.join("ca.crt"),
        serving_certificate: directory.join("apiserver.crt"),
        serving_key: directory.join("apiserver.key"),
        admin_certificate: directory.join("admin.crt"),
        admin_key: directory.join("admin.key"),
        service_account_key: directory.join("service-account.key"),
        service_account_public_key: directory.join("service-account.pub"),
    };
    write(&pki.ca_certificate, &ca_certificate.pem())?;
    write(&pki.serving_certificate, &serving_certificate.pem())?;
    write(&pki.serving_key, &serving_key.serialize_pem())?;
    write(&pki.admin_certificate, &admin_certificate.pem())?;
    write(&pki.admin_key, &admin_key.serialize_pem())?;
    write(
        &pki.service_account_key,
        &service_account_key.serialize_pem(),
    )?;
    write(
        &pki.service_account_public_key,
        &service_account_key.public_key_pem(),
    )?;
    Ok(pki)
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::write(path, text).map_err(|source| PkiError::Write {
        path: path.display().to_string(),
        source,
    })
}
