//! HTTPS for the broker: rustls (with ring, as the client uses), a
//! certificate chain and key from PEM files, and a reload that swaps them for
//! new handshakes without touching live connections (`SIGHUP`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("TLS key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The certificate and key files named in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a chain and its key: the key must match the first certificate.
fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_err = |message: String| TlsError::Cert { path: files.cert.clone(), message };
    let key_err = |message: String| TlsError::Key { path: files.key.clone(), message };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| key_err(e.to_string()))?;
    Ok(Arc::new(certified))
}

/// Hands each handshake the certificate current at that moment.
#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

/// Accepts TLS on plain TCP streams; cheap to clone.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    resolver: Arc<Reloading>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").field("files", &self.resolver.files).finish()
    }
}

impl TlsAcceptor {
    pub fn new(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
        let resolver = Arc::new(Reloading { files: files.clone(), current: RwLock::new(load(files)?) });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor { inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)), resolver })
    }

    /// Reads the files again; a bad new pair is refused and the old one kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.resolver.files)?;
        *self.resolver.current.write().expect("certificate lock") = fresh;
        Ok(())
    }

    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        self.inner.accept(stream).await
    }

    pub fn files(&self) -> &TlsFiles {
        &self.resolver.files
    }
}

/// Checks a pair of files now, for config validation.
pub fn check(files: &TlsFiles) -> Result<(), TlsError> {
    load(files).map(|_| ())
}
