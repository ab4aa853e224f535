//! TLS for the IMAP side (tokio-rustls) and the parameters for lettre's SMTP side.
//!
//! Benchmark servers on loopback use self-signed certificates: `--insecure` skips the
//! certificate chain check (handshake signatures are still verified), `--ca-cert FILE`
//! trusts one PEM certificate instead.
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

/// How the generator trusts the servers' certificates.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// Accept any certificate (self-signed benchmark servers).
    Insecure,
    /// Trust exactly this PEM certificate file.
    CaFile(std::path::PathBuf),
}

/// A rustls client configuration for IMAP.
pub(crate) fn imap_connector(trust: &Trust) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?;
    let config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
            .with_no_client_auth(),
        Trust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_pem_certs(path)? {
                roots.add(cert).context("adding the CA certificate")?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// lettre's TLS parameters for an implicit-TLS submission server named `host`.
pub(crate) fn smtp_parameters(
    trust: &Trust,
    host: &str,
) -> Result<lettre::transport::smtp::client::TlsParameters> {
    use lettre::transport::smtp::client::{Certificate, TlsParameters};
    let mut builder = TlsParameters::builder(host.to_owned());
    match trust {
        Trust::Insecure => {
            builder = builder
                .dangerous_accept_invalid_certs(true)
                .dangerous_accept_invalid_hostnames(true);
        }
        Trust::CaFile(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CA certificate {}", path.display()))?;
            let cert = Certificate::from_pem(&pem).context("parsing the CA certificate")?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build_rustls()
        .context("building SMTP TLS parameters")
}

/// The TLS server name for `host` (a DNS name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).with_context(|| format!("bad server name {host:?}"))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// Accepts every certificate chain; still checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
