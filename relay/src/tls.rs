//! The relay's TLS identity: a self-signed certificate made on first start and kept in
//! the data folder, or a real one from `--cert/--key`. Clients pin its SHA-256.

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Certificate chain and key for the QUIC endpoint.
#[derive(Debug)]
pub struct TlsIdentity {
    /// Certificate chain, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// SHA-256 of the end-entity certificate, lowercase hex: what clients pin.
    pub fn fingerprint(&self) -> String {
        self.chain.first().map(|c| hex::encode(Sha256::digest(c.as_ref()))).unwrap_or_default()
    }
}

/// Load `dir/cert.der` and `dir/key.der`, or make and keep a new self-signed pair.
pub fn load_or_create(dir: &Path) -> Result<TlsIdentity> {
    let cert_path = dir.join("cert.der");
    let key_path = dir.join("key.der");
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
        let key = std::fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
        return Ok(TlsIdentity {
            chain: vec![CertificateDer::from(cert)],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ck = rcgen::generate_simple_self_signed(vec!["veil-relay".to_string(), "localhost".to_string()])
        .context("generating the relay certificate")?;
    let cert = ck.cert.der().to_vec();
    let key = ck.signing_key.serialize_der();
    write_private(&key_path, &key)?;
    std::fs::write(&cert_path, &cert).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(TlsIdentity {
        chain: vec![CertificateDer::from(cert)],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Load a PEM certificate chain and private key (a real certificate).
pub fn load_pem(cert: &Path, key: &Path) -> Result<TlsIdentity> {
    use rustls::pki_types::pem::PemObject;
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading key {}", key.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    Ok(TlsIdentity { chain, key })
}
