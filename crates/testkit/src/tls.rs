//! Certificates for a PostgreSQL cluster that speaks TLS: a CA, a server certificate for
//! `localhost` and `127.0.0.1` signed by it, and a second, unrelated CA for "wrong CA" tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// PEM files of a TLS-enabled [`PgCluster`](crate::PgCluster).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate: pass it as `sslrootcert` to verify.
    pub ca_cert: PathBuf,
    /// A CA that signed nothing the server has: verifying against it must fail.
    pub other_ca_cert: PathBuf,
    /// The server's certificate (for `localhost` and `127.0.0.1`).
    pub server_cert: PathBuf,
    /// The server's private key (mode 0600).
    pub server_key: PathBuf,
}

/// Creates the CA, the other CA and the server's key and certificate in `dir`.
pub(crate) fn generate(dir: &Path) -> anyhow::Result<TlsFiles> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        other_ca_cert: dir.join("other-ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };

    let ca = new_ca("ragshift test CA")?;
    let other_ca = new_ca("ragshift unrelated test CA")?;

    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params.distinguished_name = common_name("localhost");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = params.signed_by(&server_key, &ca)?;

    write(&files.ca_cert, &ca.pem(), 0o644)?;
    write(&files.other_ca_cert, &other_ca.pem(), 0o644)?;
    write(&files.server_cert, &server_cert.pem(), 0o644)?;
    write(&files.server_key, &server_key.serialize_pem(), 0o600)?;
    Ok(files)
}

fn new_ca(name: &str) -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn write(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
