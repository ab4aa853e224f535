//! Full Kith clients (kith-core's `Client`: account, MLS group engine, envelopes, IMAP
//! inbox with IDLE, SMTP outbox) running against a [`LocalRelay`].
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kith_core::account::Account;
use kith_core::client::Client;
use kith_core::content::Content;
use kith_core::events::{ConnectionState, Event};
use kith_core::group::GroupId;
use kith_core::transport::{
    InboxOptions, OutboxOptions, RelayEndpoint, Security, ServerEndpoint, TrustAnchor,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{LocalRelay, DOMAIN, PATIENCE};

/// A device running a full client: its inbox and outbox tasks run until `stop` is cancelled.
pub struct ClientDevice {
    /// A name for printing.
    pub name: &'static str,
    /// The client.
    pub client: Arc<Client>,
    events: broadcast::Receiver<Event>,
}

impl ClientDevice {
    /// Creates an account in `dir` on the relay (created on first login), starts its inbox
    /// and waits until it is logged in and idling, then starts its outbox.
    pub async fn start(
        relay: &LocalRelay,
        dir: PathBuf,
        name: &'static str,
        stop: &CancellationToken,
    ) -> Result<Self> {
        Self::launch(Account::create(&dir, endpoint(relay))?, name, stop).await
    }

    /// Runs a client for `account` (new or reopened): starts its inbox, waits until it is
    /// logged in and idling, then starts its outbox; both run until `stop` is cancelled.
    pub async fn launch(
        account: Account,
        name: &'static str,
        stop: &CancellationToken,
    ) -> Result<Self> {
        let client = Arc::new(Client::new(account)?);
        let events = client.account().events().subscribe();
        let inbox = client.account().inbox(InboxOptions::default());
        let handler = client.inbox_handler();
        let inbox_stop = stop.clone();
        tokio::spawn(async move { inbox.run(handler, inbox_stop).await });
        let mut device = Self {
            name,
            client,
            events,
        };
        device
            .wait_for(|e| *e == Event::ConnectionChanged(ConnectionState::Connected))
            .await
            .with_context(|| format!("{name} never connected to the relay"))?;
        let outbox = device.client.account().outbox(OutboxOptions::default());
        let outbox_stop = stop.clone();
        tokio::spawn(async move { outbox.run(outbox_stop).await });
        Ok(device)
    }

    /// This device's relay address.
    pub fn address(&self) -> &str {
        self.client.account().address()
    }

    /// Waits (up to [`PATIENCE`]) for an event.
    pub async fn wait_for(&mut self, wanted: impl Fn(&Event) -> bool) -> Result<Event> {
        let events = &mut self.events;
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                match events.recv().await {
                    Ok(event) if wanted(&event) => return Ok(event),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => bail!("event stream closed"),
                }
            }
        })
        .await;
        found.with_context(|| format!("{}: the event never came", self.name))?
    }

    /// Waits until a new application message has been received and stored.
    pub async fn wait_for_message(&mut self) -> Result<()> {
        self.wait_for(|e| matches!(e, Event::MessageReceived { .. }))
            .await
            .map(drop)
    }

    /// The texts shown in a group, oldest first.
    pub fn texts(&self, group: &GroupId) -> Result<Vec<String>> {
        let messages = self.client.messages(group)?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m.content {
                Content::Text { body, .. } => Some(body),
                _ => None,
            })
            .collect())
    }
}

/// How a device reaches the local relay: implicit TLS, trusting exactly its certificate.
fn endpoint(relay: &LocalRelay) -> RelayEndpoint {
    let server = |port| ServerEndpoint {
        host: DOMAIN.into(),
        port,
        security: Security::ImplicitTls,
    };
    RelayEndpoint {
        domain: DOMAIN.into(),
        imap: server(relay.imaps.port()),
        smtp: server(relay.submissions.port()),
        trust: TrustAnchor::PemFile(relay.dir.path().join("cert.pem")),
    }
}
