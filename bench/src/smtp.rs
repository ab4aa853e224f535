//! The sending side: one authenticated lettre SMTP connection per sender, reused for every
//! message (implicit TLS, AUTH PLAIN), as a chat client keeps its submission connection.
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;

use crate::accounts::Account;
use crate::tls::{self, Trust};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to submit.
#[derive(Debug, Clone)]
pub(crate) struct SmtpTarget {
    /// Host name or IP address.
    pub(crate) host: String,
    /// Port of the implicit-TLS submission listener.
    pub(crate) port: u16,
    /// Certificate trust.
    pub(crate) trust: Trust,
}

/// One logged-in submission connection.
pub(crate) struct Sender {
    connection: AsyncSmtpConnection,
    account: Account,
    from: Address,
}

impl Sender {
    /// Connects, says EHLO and authenticates as `account`.
    pub(crate) async fn connect(target: &SmtpTarget, account: Account) -> Result<Self> {
        let from: Address = account
            .address
            .parse()
            .context("sender address is not a mail address")?;
        let tls = tls::smtp_parameters(&target.trust, &target.host)?;
        let hello = ClientId::Domain("loadgen.invalid".into());
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (target.host.as_str(), target.port),
            Some(TIMEOUT),
            &hello,
            Some(tls),
            None,
        )
        .await
        .context("SMTP connect")?;
        let credentials = Credentials::new(
            account.address.clone(),
            account.password.as_str().to_owned(),
        );
        connection
            .auth(&[Mechanism::Plain], &credentials)
            .await
            .context("SMTP AUTH PLAIN")?;
        Ok(Self {
            connection,
            account,
            from,
        })
    }

    /// The sender's own address (the From of its messages).
    pub(crate) fn address(&self) -> &str {
        &self.account.address
    }

    /// Submits one message to `recipients`; returns once the server answered 250.
    pub(crate) async fn send(&mut self, recipients: &[Address], message: &[u8]) -> Result<()> {
        let envelope = Envelope::new(Some(self.from.clone()), recipients.to_vec())
            .context("building the SMTP envelope")?;
        self.connection
            .send(&envelope, message)
            .await
            .context("SMTP transaction")?;
        Ok(())
    }

    /// Says QUIT.
    pub(crate) async fn quit(mut self) {
        // The server may already have closed an idle connection; nothing to do then.
        let _ = self.connection.quit().await;
    }
}
