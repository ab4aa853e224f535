//! Running the inbox, the outbox and the engine's timers for a while: `sync`, `watch`, and
//! the short runs after each command that sends something.
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kith_core::client::Client;
use kith_core::events::{ConnectionState, Event};
use kith_core::transport::{InboxOptions, OutboxOptions};
use tokio_util::sync::CancellationToken;

/// When [`run`] may stop before its time limit.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// Run for the whole limit.
    Deadline,
    /// Stop once the outbox is empty.
    Sent,
    /// Stop once the inbox has logged in (which registers a new account on the relay).
    Connected,
    /// Stop once an event passes this test and the outbox is empty (not an error if none
    /// does before the limit).
    Event(fn(&Event) -> bool),
}

/// How often the loop looks at events, the outbox and the engine's timers.
const TICK: Duration = Duration::from_millis(100);

/// Runs the inbox, the outbox and the engine's timers for up to `limit` (`None`: until
/// Ctrl-C), or until `until` holds, passing every event to `on_event`.
/// Fails if the relay refused an envelope, or if `until` still does not hold at the limit.
pub(crate) fn run(
    client: &Arc<Client>,
    limit: Option<Duration>,
    until: Until,
    mut on_event: impl FnMut(&Client, &Event) -> Result<()>,
) -> Result<()> {
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
        let timers = tokio::spawn(Arc::clone(client).run_timers(stop.clone()));
        let interrupted = tokio::spawn(async { tokio::signal::ctrl_c().await.is_ok() });
        let (mut connected, mut refused, mut matched) = (false, 0usize, false);
        let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
        let mut failure = None;
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
                if let Err(error) = on_event(client, &event) {
                    failure = Some(error);
                }
            }
            let done = match until {
                Until::Deadline => false,
                Until::Sent => outbox.pending()? == 0,
                Until::Connected => connected,
                Until::Event(_) => matched && outbox.pending()? == 0,
            };
            let late = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            if done || late || interrupted.is_finished() || failure.is_some() {
                break;
            }
            tokio::time::sleep(TICK).await;
        }
        stop.cancel();
        interrupted.abort();
        inbox_task.await.context("inbox task")??;
        outbox_task.await.context("outbox task")??;
        timers.await.context("timers task")?;
        if let Some(error) = failure {
            return Err(error);
        }
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
            _ => Ok(()),
        }
    })
}

/// Runs until the outbox is empty (at most `limit`), ignoring events.
pub(crate) fn send_queued(client: &Arc<Client>, limit: Duration) -> Result<()> {
    run(client, Some(limit), Until::Sent, |_, _| Ok(()))
}
