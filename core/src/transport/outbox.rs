//! The outbox: envelopes to send are rows of the account database, written in the same
//! transaction as whatever produced them. A sender task submits them in order and deletes
//! each row only after the relay's 250; failures are retried with exponential backoff, and
//! rows survive restarts.
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff::delay_for_attempt;
use super::smtp::{Failure, SubmitError, Submitter};
use super::{unix_millis, Credentials, ServerEndpoint, TransportError, TrustAnchor};
use crate::db::{self, Database, DbError, OutboxEntry, OutboxId};
use crate::events::{Event, EventBus};

/// Timeouts and retry delays of the outbox sender.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OutboxOptions {
    /// Limit for connecting and for every SMTP command.
    pub io_timeout: Duration,
    /// Delay after the first failed attempt; doubles with every further failure.
    pub retry_initial: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            io_timeout: Duration::from_secs(60),
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
        }
    }
}

impl OutboxOptions {
    /// Sets the first and the longest retry delay.
    pub fn with_retry(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max;
        self
    }
}

/// The sending side of the transport for one account. Clones share the wake-up signal.
#[derive(Clone)]
pub struct Outbox {
    server: ServerEndpoint,
    trust: TrustAnchor,
    credentials: Credentials,
    db: Database,
    events: EventBus,
    wake: Arc<Notify>,
    options: OutboxOptions,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox sender for the account at `server`. `wake` is the signal
    /// [`Outbox::wake`] pulls; share it with whoever enqueues.
    pub fn new(
        server: ServerEndpoint,
        trust: TrustAnchor,
        credentials: Credentials,
        db: Database,
        events: EventBus,
        wake: Arc<Notify>,
        options: OutboxOptions,
    ) -> Self {
        Self {
            server,
            trust,
            credentials,
            db,
            events,
            wake,
            options,
        }
    }

    /// Adds an envelope for `recipients` (one relay address per device), inside the
    /// caller's transaction so that it is queued if and only if what produced it commits.
    /// Call [`Outbox::wake`] after the commit.
    pub fn enqueue(
        tx: &Connection,
        envelope: &[u8],
        recipients: &[String],
    ) -> Result<OutboxId, DbError> {
        db::outbox::insert(tx, envelope, recipients, unix_millis())
    }

    /// Tells the sender task to look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// How many envelopes are waiting.
    pub fn pending(&self) -> Result<usize, DbError> {
        self.db.read(db::outbox::len)
    }

    /// Submits due envelopes until `stop` is cancelled. Fails only if the TLS
    /// configuration cannot be built; everything else is retried.
    pub async fn run(&self, stop: CancellationToken) -> Result<(), TransportError> {
        let submitter = Submitter::new(
            &self.server,
            &self.trust,
            &self.credentials,
            self.options.io_timeout,
        )?;
        while !stop.is_cancelled() {
            let now = unix_millis();
            let due = match self.db.read(|conn| db::outbox::next_due(conn, now)) {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "reading the outbox failed");
                    None
                }
            };
            match due {
                Some(entry) => {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        result = self.send(&submitter, entry) => if let Err(error) = result {
                            tracing::warn!(%error, "updating the outbox failed");
                        },
                    }
                }
                None => self.wait(&stop).await,
            }
        }
        Ok(())
    }

    /// Sleeps until the earliest entry is due, a wake-up, or `stop`.
    async fn wait(&self, stop: &CancellationToken) {
        let earliest = self.db.read(db::outbox::earliest_due).ok().flatten();
        let sleep = match earliest {
            Some(at) => Duration::from_millis((at - unix_millis()).clamp(0, 60_000) as u64),
            None => Duration::from_secs(60),
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = self.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }

    /// Submits one entry and records the result.
    async fn send(&self, submitter: &Submitter, entry: OutboxEntry) -> Result<(), DbError> {
        let result = tokio::time::timeout(
            self.options.io_timeout * 2,
            submitter.submit(&entry.envelope, &entry.recipients),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SubmitError::Transient(Failure::local(
                "submission timed out",
            )))
        });
        match result {
            Ok(()) => {
                self.db.read(|conn| db::outbox::remove(conn, entry.id))?;
                tracing::debug!(id = entry.id.0, "envelope submitted");
                self.events.emit(Event::EnvelopeSent { outbox: entry.id });
            }
            Err(SubmitError::Permanent(failure)) => {
                self.db.read(|conn| db::outbox::remove(conn, entry.id))?;
                tracing::warn!(id = entry.id.0, code = ?failure.code, "relay refused envelope; dropped");
                self.events.emit(Event::EnvelopeRejected {
                    outbox: entry.id,
                    reason: failure.reason,
                });
            }
            Err(SubmitError::Transient(failure)) => {
                let delay = delay_for_attempt(
                    entry.attempts,
                    self.options.retry_initial,
                    self.options.retry_max,
                );
                let next = unix_millis() + delay.as_millis() as i64;
                self.db
                    .read(|conn| db::outbox::reschedule(conn, entry.id, next, &failure.reason))?;
                tracing::info!(
                    id = entry.id.0,
                    attempt = entry.attempts + 1,
                    code = ?failure.code,
                    "submission failed; will retry"
                );
                return Ok(());
            }
        }
        let pending = self.db.read(db::outbox::len)?;
        self.events.emit(Event::OutboxChanged { pending });
        Ok(())
    }
}
