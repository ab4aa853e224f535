//! A full client on the in-process relay with its inbox, outbox and timers running; shared
//! by the client and contacts tests.
use std::sync::Arc;
use std::time::Duration;

use kith_core::account::Account;
use kith_core::client::Client;
use kith_core::events::{ConnectionState, Event};
use kith_core::transport::{InboxOptions, OutboxOptions, Security, TransportError};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::{account_dir, wait_for_event, Relay};

pub struct Device {
    pub client: Arc<Client>,
    pub events: broadcast::Receiver<Event>,
    pub tasks: Vec<JoinHandle<Result<(), TransportError>>>,
}

/// Creates an account on the relay and starts its inbox (waiting until it is logged in)
/// and its outbox.
pub async fn device(
    relay: &Relay,
    dirs: &tempfile::TempDir,
    name: &str,
    stop: &CancellationToken,
) -> Device {
    let account = Account::create(
        &account_dir(dirs, name),
        relay.endpoint(Security::ImplicitTls),
    )
    .unwrap();
    let client = Arc::new(Client::new(account).unwrap());
    let mut events = client.account().events().subscribe();
    let inbox = client.account().inbox(
        InboxOptions::default().with_backoff(Duration::from_millis(50), Duration::from_millis(500)),
    );
    let handler = client.inbox_handler();
    let inbox_task = tokio::spawn({
        let stop = stop.clone();
        async move { inbox.run(handler, stop).await }
    });
    wait_for_event(&mut events, |e| {
        *e == Event::ConnectionChanged(ConnectionState::Connected)
    })
    .await;
    let outbox = client.account().outbox(
        OutboxOptions::default().with_retry(Duration::from_millis(50), Duration::from_millis(500)),
    );
    let outbox_task = tokio::spawn({
        let stop = stop.clone();
        async move { outbox.run(stop).await }
    });
    let timers = tokio::spawn(Arc::clone(&client).run_timers(stop.clone()));
    let timers_task = tokio::spawn(async move {
        timers.await.expect("timers task");
        Ok(())
    });
    Device {
        client,
        events,
        tasks: vec![inbox_task, outbox_task, timers_task],
    }
}
