//! SMTP submission with lettre: implicit TLS or STARTTLS, AUTH PLAIN, one transaction with
//! one RCPT per recipient device, the envelope bytes sent as they are.
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials as SmtpCredentials, Mechanism};
use lettre::transport::smtp::client::Tls;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

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

/// An authenticated submission client for one relay account (pools its connection).
pub(crate) struct Submitter {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Address,
}

impl Submitter {
    pub(crate) fn new(
        server: &ServerEndpoint,
        trust: &TrustAnchor,
        credentials: &Credentials,
        limit: Duration,
    ) -> Result<Self, TransportError> {
        let parameters = tls::smtp_parameters(&server.host, trust)?;
        let tls = match server.security {
            Security::ImplicitTls => Tls::Wrapper(parameters),
            Security::StartTls => Tls::Required(parameters),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .tls(tls)
            // Not the machine's host name: the relay needs no hint about the device.
            .hello_name(ClientId::Domain("localhost".into()))
            .credentials(SmtpCredentials::new(
                credentials.address.clone(),
                credentials.password.to_string(),
            ))
            .authentication(vec![Mechanism::Plain])
            .timeout(Some(limit))
            .pool_config(
                PoolConfig::new()
                    .max_size(1)
                    .idle_timeout(Duration::from_secs(60)),
            )
            .build();
        Ok(Self {
            transport,
            from: credentials.address.parse()?,
        })
    }

    /// Submits `envelope` to every address in `recipients` in one SMTP transaction.
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
        match self.transport.send_raw(&smtp_envelope, envelope).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => {
                Err(SubmitError::Permanent(Failure::from_smtp(&error)))
            }
            Err(error) => Err(SubmitError::Transient(Failure::from_smtp(&error))),
        }
    }
}
