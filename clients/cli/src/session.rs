//! Running the inbox and outbox for a while: what every command that talks to the relay
//! shares.
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kith_core::client::Client;
use kith_core::events::{ConnectionState, Event};
use kith_core::transport::{InboxOptions, OutboxOptions};
use tokio_util::sync::CancellationToken;

/// When [`sync`] may stop before its time limit.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// Run for the whole limit.
    Deadline,
    /// Stop once the outbox is empty.
    Sent,
    /// Stop once the inbox has logged in (which registers a new account on the relay).
    Connected,
    /// Stop once an event passes this test (and the outbox is empty).
    Event(fn(&Event) -> bool),
}

/// Runs the inbox and outbox for up to `limit`, or until `until` holds; returns the events
/// seen. Fails if the relay refused an envelope, or if `until` (other than an event) still
/// does not hold at the limit.
pub(crate) fn sync(client: &Arc<Client>, limit: Duration, until: Until) -> Result<Vec<Event>> {
    client.handle_timeout()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let mut events = client.account().events().subscribe();
        let outbox = client.account().outbox(OutboxOptions::default());
        let inbox = client.account().inbox(InboxOptions::default());
        let handler = client.inbox_handler();
        let inbox_task = tokio::spawn({
            let stop = stop.clone();
            async move { inbox.run(handler, stop).await }
        });
        let outbox_task = tokio::spawn({
            let stop = stop.clone();
            let outbox = outbox.clone();
            async move { outbox.run(stop).await }
        });
        let (mut connected, mut refused, mut matched) = (false, 0usize, false);
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Ok(event) = events.try_recv() {
                match &event {
                    Event::ConnectionChanged(ConnectionState::Connected) => connected = true,
                    Event::EnvelopeRejected { .. } => refused += 1,
                    _ => {}
                }
                if let Until::Event(wanted) = until {
                    matched |= wanted(&event);
                }
                seen.push(event);
            }
            let done = match until {
                Until::Deadline => false,
                Until::Sent => outbox.pending()? == 0,
                Until::Connected => connected,
                Until::Event(_) => matched && outbox.pending()? == 0,
            };
            if done || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.cancel();
        inbox_task.await.context("inbox task")??;
        outbox_task.await.context("outbox task")??;
        if refused > 0 {
            bail!(
                "the relay refused {refused} envelope(s) for good; a recipient may not have \
                 connected to the relay yet (`kith init` or `kith sync` registers an account)"
            );
        }
        match until {
            Until::Sent if outbox.pending()? > 0 => {
                bail!("the relay did not accept every envelope yet; run `kith sync` later")
            }
            Until::Connected if !connected => {
                bail!("could not log in to the relay; run `kith sync` to try again")
            }
            _ => Ok(seen),
        }
    })
}
