//! SMTP submission with lettre: implicit TLS or STARTTLS, AUTH PLAIN, one transaction with
//! one RCPT per recipient device, the envelope bytes sent as they are.
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials as SmtpCredentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use super::{tls, Credentials, Security, ServerEndpoint, TransportError, TrustAnchor};

/// Why a submission failed.
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// Worth retrying: the relay is unreachable, busy, or answered 4xx.
    Transient(Failure),
    /// The relay refused the envelope for good (5xx) or an address is unusable.
    Permanent(Failure),
}

/// The details of a failed submission.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The error as text, for the user (may name addresses: never log it).
    pub(crate) reason: String,
    /// The SMTP reply code, if the relay answered; safe to log.
    pub(crate) code: Option<String>,
}

impl Failure {
    pub(crate) fn local(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            code: None,
        }
    }

    fn from_smtp(error: &lettre::transport::smtp::Error) -> Self {
        Self {
            reason: error.to_string(),
            code: error.status().map(|code| code.to_string()),
        }
    }
}

/// An authenticated submission client for one relay account. It keeps one connection
/// open between submissions and makes it itself (TCP_NODELAY, then TLS) rather than through
/// lettre's pool: lettre leaves Nagle's algorithm on, which holds each small SMTP command
/// back ~40 ms waiting for the previous one's ACK.
pub(crate) struct Submitter {
    server: ServerEndpoint,
    tls: Arc<ClientConfig>,
    starttls: TlsParameters,
    credentials: SmtpCredentials,
    from: Address,
    limit: Duration,
    connection: Mutex<Option<AsyncSmtpConnection>>,
}

/// Not the machine's host name: the relay needs no hint about the device.
fn hello() -> ClientId {
    ClientId::Domain("localhost".into())
}

impl Submitter {
    pub(crate) fn new(
        server: &ServerEndpoint,
        trust: &TrustAnchor,
        credentials: &Credentials,
        limit: Duration,
    ) -> Result<Self, TransportError> {
        Ok(Self {
            server: server.clone(),
            tls: tls::client_config(trust)?,
            starttls: tls::smtp_parameters(&server.host, trust)?,
            credentials: SmtpCredentials::new(
                credentials.address.clone(),
                credentials.password.to_string(),
            ),
            from: credentials.address.parse()?,
            limit,
            connection: Mutex::new(None),
        })
    }

    /// Submits `envelope` to every address in `recipients` in one SMTP transaction, on the
    /// open connection or a new one.
    pub(crate) async fn submit(
        &self,
        envelope: &[u8],
        recipients: &[String],
    ) -> Result<(), SubmitError> {
        let to = recipients
            .iter()
            .map(|r| r.parse::<Address>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                SubmitError::Permanent(Failure::local(format!("recipient address: {e}")))
            })?;
        let smtp_envelope = Envelope::new(Some(self.from.clone()), to)
            .map_err(|e| SubmitError::Permanent(Failure::local(e.to_string())))?;
        let mut slot = self.connection.lock().await;
        if slot.as_ref().is_none_or(|c| c.has_broken()) {
            *slot = Some(self.connect().await?);
        }
        let connection = slot.as_mut().expect("connected above");
        match connection.send(&smtp_envelope, envelope).await {
            Ok(_) => Ok(()),
            Err(error) => {
                // After any error the session's state is uncertain: connect afresh next time.
                *slot = None;
                if error.is_permanent() {
                    Err(SubmitError::Permanent(Failure::from_smtp(&error)))
                } else {
                    Err(SubmitError::Transient(Failure::from_smtp(&error)))
                }
            }
        }
    }

    /// Connects (TCP_NODELAY), secures the connection (implicit TLS or STARTTLS), reads the
    /// greeting and EHLO, and authenticates with AUTH PLAIN.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SubmitError> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            SubmitError::Transient(Failure::local(format!("{what}: {e}")))
        };
        let address = (self.server.host.as_str(), self.server.port);
        let tcp = tokio::time::timeout(self.limit, TcpStream::connect(address))
            .await
            .map_err(|e| transient("connecting", &e))?
            .map_err(|e| transient("connecting", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| transient("TCP_NODELAY", &e))?;
        let smtp = |e: lettre::transport::smtp::Error| {
            if e.is_permanent() {
                SubmitError::Permanent(Failure::from_smtp(&e))
            } else {
                SubmitError::Transient(Failure::from_smtp(&e))
            }
        };
        let mut connection = match self.server.security {
            Security::ImplicitTls => {
                let name = ServerName::try_from(self.server.host.clone())
                    .map_err(|e| SubmitError::Permanent(Failure::local(e.to_string())))?;
                let stream = TlsConnector::from(self.tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| transient("TLS", &e))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsStream(stream)), &hello())
                    .await
                    .map_err(smtp)?
            }
            Security::StartTls => {
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello())
                        .await
                        .map_err(smtp)?;
                connection
                    .starttls(self.starttls.clone(), &hello())
                    .await
                    .map_err(smtp)?;
                connection
            }
        };
        connection
            .auth(&[Mechanism::Plain], &self.credentials)
            .await
            .map_err(smtp)?;
        Ok(connection)
    }
}

/// A rustls client stream that lettre can drive as its transport.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
