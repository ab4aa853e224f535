//! The group engine's timers, run for as long as the client runs: delayed commits (leave
//! requests this device answers, re-issued intents after a lost fork) and stash expiry.
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{unix_now, Client};

/// The longest sleep between two runs even when nothing is due (stash expiry has no timer
/// of its own).
const MAX_SLEEP: Duration = Duration::from_secs(600);

impl Client {
    /// Runs [`Client::handle_timeout`] whenever it is due, until `stop` is cancelled; a
    /// command or an incoming envelope that makes new work due wakes it at once. Spawn it
    /// next to the inbox and the outbox. A failing run is logged and retried a second later.
    pub async fn run_timers(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let sleep = match self.handle_timeout() {
                // Work still due right after a run is stuck (it failed or waits for
                // something else): look again a second later rather than spin.
                Ok(Some(due)) => Duration::from_secs(due.saturating_sub(unix_now()).max(1)),
                Ok(None) => MAX_SLEEP,
                Err(error) => {
                    tracing::warn!(%error, "the group engine's timers failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = stop.cancelled() => {}
                () = self.after_commit.timers.notified() => {}
                () = tokio::time::sleep(sleep.min(MAX_SLEEP)) => {}
            }
        }
    }
}
