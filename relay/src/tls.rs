//! TLS for every listener (rustls with the ring provider), and the self-signed certificate
//! `kith-relay init` writes for local use.
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// TLS setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating a self-signed certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the certificate files failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Loads a certificate chain and private key (PEM) into a rustls server configuration.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_error = |what, path: &Path, reason: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error("certificate", cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(
            "certificate",
            cert,
            "no certificate in the file".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| pem_error("private key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    Ok(Arc::new(config))
}

/// Writes a self-signed certificate for `names` (PEM) to `cert` and its key to `key`.
pub fn write_self_signed(names: &[String], cert: &Path, key: &Path) -> Result<(), TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| TlsError::Write {
            path: path.to_owned(),
            source,
        })
    };
    write(cert, generated.cert.pem())?;
    write(key, generated.key_pair.serialize_pem())?;
    restrict_permissions(key)
}

fn restrict_permissions(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        TlsError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_self_signed_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        write_self_signed(&["localhost".into()], &cert, &key).unwrap();
        load_server_config(&cert, &key).unwrap();
    }

    #[test]
    fn a_missing_or_empty_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "").unwrap();
        std::fs::write(&key, "").unwrap();
        let error = load_server_config(&cert, &key).unwrap_err();
        assert!(
            matches!(
                error,
                TlsError::Pem {
                    what: "certificate",
                    ..
                }
            ),
            "{error}"
        );
    }
}
