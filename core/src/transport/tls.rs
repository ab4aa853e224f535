//! rustls client configurations for IMAP (tokio-rustls) and SMTP (lettre), from one
//! [`TrustAnchor`].
use std::sync::Arc;

use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{TransportError, TrustAnchor};

/// The certificates in a PEM file (at least one).
fn pem_certificates(
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let fail = |reason: String| TransportError::TrustAnchor {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The rustls client configuration for IMAP.
pub(crate) fn client_config(trust: &TrustAnchor) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    match trust {
        TrustAnchor::WebPkiRoots => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TrustAnchor::PemFile(path) => {
            for cert in pem_certificates(path)? {
                roots.add(cert).map_err(|e| TransportError::TrustAnchor {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::TlsSetup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// lettre's TLS parameters for SMTP to `host`.
pub(crate) fn smtp_parameters(
    host: &str,
    trust: &TrustAnchor,
) -> Result<TlsParameters, TransportError> {
    let builder = TlsParameters::builder(host.to_owned());
    let builder = match trust {
        TrustAnchor::WebPkiRoots => builder.certificate_store(CertificateStore::WebpkiRoots),
        TrustAnchor::PemFile(path) => {
            let mut builder = builder.certificate_store(CertificateStore::None);
            for cert in pem_certificates(path)? {
                let cert = Certificate::from_der(cert.to_vec())
                    .map_err(|e| TransportError::TlsSetup(e.to_string()))?;
                builder = builder.add_root_certificate(cert);
            }
            builder
        }
    };
    builder
        .build_rustls()
        .map_err(|e| TransportError::TlsSetup(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_pem_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for path in [dir.path().join("missing.pem"), empty] {
            let trust = TrustAnchor::PemFile(path);
            assert!(matches!(
                client_config(&trust),
                Err(TransportError::TrustAnchor { .. })
            ));
            assert!(matches!(
                smtp_parameters("localhost", &trust),
                Err(TransportError::TrustAnchor { .. })
            ));
        }
    }

    #[test]
    fn the_public_roots_build() {
        assert!(client_config(&TrustAnchor::WebPkiRoots).is_ok());
        assert!(smtp_parameters("relay.example", &TrustAnchor::WebPkiRoots).is_ok());
    }
}
