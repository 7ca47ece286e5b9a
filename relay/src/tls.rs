//! The relay's TLS identity: a self-signed certificate made on first start and kept in
//! the data folder, or a real one from `--cert/--key`. Clients pin its SHA-256.

use crate::error::StartError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
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
        self.chain.first().map(|c| veil_quic::fingerprint(c.as_ref())).unwrap_or_default()
    }
}

/// Load `dir/cert.der` and `dir/key.der`, or make and keep a new self-signed pair.
pub fn load_or_create(dir: &Path) -> Result<TlsIdentity, StartError> {
    let cert_path = dir.join("cert.der");
    let key_path = dir.join("key.der");
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read(&cert_path).map_err(|e| StartError::file("reading", &cert_path, e))?;
        let key = std::fs::read(&key_path).map_err(|e| StartError::file("reading", &key_path, e))?;
        return Ok(TlsIdentity {
            chain: vec![CertificateDer::from(cert)],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| StartError::file("creating", dir, e))?;
    let ck = rcgen::generate_simple_self_signed(vec!["veil-relay".to_string(), "localhost".to_string()])
        .map_err(|e| StartError::Certificate(format!("generating the relay certificate: {e}")))?;
    let cert = ck.cert.der().to_vec();
    let key = ck.signing_key.serialize_der();
    write_private(&key_path, &key)?;
    std::fs::write(&cert_path, &cert).map_err(|e| StartError::file("writing", &cert_path, e))?;
    Ok(TlsIdentity {
        chain: vec![CertificateDer::from(cert)],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StartError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| StartError::file("writing", path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| StartError::file("writing", path, e))?;
    Ok(())
}

/// Load a PEM certificate chain and private key (a real certificate).
pub fn load_pem(cert: &Path, key: &Path) -> Result<TlsIdentity, StartError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |what: &Path, e: &dyn std::fmt::Display| StartError::Certificate(format!("{}: {e}", what.display()));
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    if chain.is_empty() {
        return Err(StartError::Certificate(format!("{} holds no certificate", cert.display())));
    }
    Ok(TlsIdentity { chain, key })
}
