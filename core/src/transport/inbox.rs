//! The inbox loop: fetch new messages over IMAP, hand each to a handler inside one SQLite
//! transaction that also records the cursor and the envelope's Message-ID, and delete the
//! message from the relay only after that transaction committed. Between fetches it waits
//! in IDLE; when the connection fails it reconnects with exponential backoff.
//!
//! Crash safety: the cursor (UIDVALIDITY, last UID) moves in the same transaction as the
//! handler's effects. A crash after the commit but before the deletion leaves the message on
//! the relay with a UID at or below the cursor: the next start deletes it without calling
//! the handler. If the mailbox's UIDVALIDITY changed, or the relay stored a duplicate under
//! a new UID, the processed-Message-ID table makes the handler skip it.
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use rusqlite::Transaction;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::imap::{self, ImapSession};
use super::{tls, unix_millis, Credentials, ServerEndpoint, TransportError, TrustAnchor};
use crate::db::{self, Database, DbError, InboxCursor, MessageKey};
use crate::events::{ConnectionState, Event, EventBus};

/// Processed Message-IDs are kept this long (longer than any relay keeps a message).
const PROCESSED_RETENTION_MS: i64 = 60 * 86_400 * 1000;

/// Timeouts and backoff of the inbox loop.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InboxOptions {
    /// Limit for every IMAP command and for connecting.
    pub io_timeout: Duration,
    /// IDLE is restarted after this long without news (RFC 2177 asks for < 29 minutes).
    pub idle_timeout: Duration,
    /// First reconnect delay; doubles on every failure.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for InboxOptions {
    fn default() -> Self {
        Self {
            io_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(25 * 60),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

impl InboxOptions {
    /// Sets the first and the longest reconnect delay.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// Sets the limit for every IMAP command.
    pub fn with_io_timeout(mut self, limit: Duration) -> Self {
        self.io_timeout = limit;
        self
    }
}

/// One fetched message, as the handler sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Incoming<'a> {
    /// The whole RFC 5322 envelope as the relay stored it.
    pub bytes: &'a [u8],
    /// The key it is de-duplicated by.
    pub key: &'a MessageKey,
    /// Its IMAP UID.
    pub uid: u32,
}

/// What became of one message.
enum Outcome {
    Processed,
    Duplicate,
    Rejected(String),
}

/// The receiving side of the transport for one account.
#[derive(Debug, Clone)]
pub struct Inbox {
    server: ServerEndpoint,
    trust: TrustAnchor,
    credentials: Credentials,
    db: Database,
    events: EventBus,
    options: InboxOptions,
}

impl Inbox {
    /// An inbox loop for the account at `server`, writing to `db` and reporting on `events`.
    pub fn new(
        server: ServerEndpoint,
        trust: TrustAnchor,
        credentials: Credentials,
        db: Database,
        events: EventBus,
        options: InboxOptions,
    ) -> Self {
        Self {
            server,
            trust,
            credentials,
            db,
            events,
            options,
        }
    }

    /// Runs until `stop` is cancelled, reconnecting with backoff after every failure.
    ///
    /// `handler` is called once per new envelope, inside a `BEGIN IMMEDIATE` transaction on
    /// the account database: it writes its effects through that transaction (build a
    /// `kith_crypto::mls::KithProvider` over it for MLS state) and returns `Ok`; the loop then
    /// records the cursor and the envelope's key in the same transaction, commits, and only
    /// then deletes the message from the relay. If the handler returns `Err`, its writes are
    /// rolled back, the envelope is recorded as processed and deleted, and
    /// [`Event::IncomingDropped`] is emitted: return `Err` only for envelopes that can never
    /// be used. A panic in the handler rolls everything back and ends the loop; the message
    /// is fetched again on the next start.
    ///
    /// Fails only if the TLS configuration cannot be built; network failures are retried.
    pub async fn run<H, E>(
        &self,
        mut handler: H,
        stop: CancellationToken,
    ) -> Result<(), TransportError>
    where
        H: FnMut(&Transaction<'_>, &Incoming<'_>) -> Result<(), E>,
        E: std::fmt::Display,
    {
        let tls = tls::client_config(&self.trust)?;
        let mut backoff = Backoff::new(self.options.backoff_initial, self.options.backoff_max);
        let cutoff = unix_millis() - PROCESSED_RETENTION_MS;
        if let Err(error) = self
            .db
            .read(|conn| db::inbox::prune_processed(conn, cutoff))
        {
            tracing::warn!(%error, "pruning processed envelope ids failed");
        }
        while !stop.is_cancelled() {
            self.events
                .emit(Event::ConnectionChanged(ConnectionState::Connecting));
            let result = self
                .connection(Arc::clone(&tls), &mut handler, &stop, &mut backoff)
                .await;
            match result {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, "inbox connection failed");
                    self.events
                        .emit(Event::ConnectionChanged(ConnectionState::Disconnected));
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
        self.events
            .emit(Event::ConnectionChanged(ConnectionState::Disconnected));
        Ok(())
    }

    /// One connection: log in, then sync and IDLE until stopped (`Ok`) or failed (`Err`).
    async fn connection<H, E>(
        &self,
        tls: Arc<rustls::ClientConfig>,
        handler: &mut H,
        stop: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), TransportError>
    where
        H: FnMut(&Transaction<'_>, &Incoming<'_>) -> Result<(), E>,
        E: std::fmt::Display,
    {
        let limit = self.options.io_timeout;
        let mut session = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            session = imap::login(&self.server, tls, &self.credentials, limit) => session?,
        };
        let mailbox = imap::timed("SELECT", limit, session.select("INBOX")).await?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or(TransportError::MissingUidValidity)?;
        backoff.reset();
        self.events
            .emit(Event::ConnectionChanged(ConnectionState::Connected));
        tracing::debug!("inbox connected");
        loop {
            self.sync(&mut session, uid_validity, handler, stop).await?;
            if stop.is_cancelled() {
                break;
            }
            match self.idle(session, stop).await? {
                Some(again) => session = again,
                None => return Ok(()),
            }
        }
        let _ = tokio::time::timeout(limit, session.logout()).await;
        Ok(())
    }

    /// Processes every message above the cursor and deletes those at or below it.
    async fn sync<H, E>(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        handler: &mut H,
        stop: &CancellationToken,
    ) -> Result<(), TransportError>
    where
        H: FnMut(&Transaction<'_>, &Incoming<'_>) -> Result<(), E>,
        E: std::fmt::Display,
    {
        let limit = self.options.io_timeout;
        while session.unsolicited_responses.try_recv().is_ok() {}
        let cursor = self.db.read(db::inbox::load_cursor)?;
        let last_uid = match cursor {
            Some(cursor) if cursor.uid_validity == uid_validity => cursor.last_uid,
            _ => 0,
        };
        let uids = imap::all_uids(session, limit).await?;
        let (done, new): (Vec<u32>, Vec<u32>) = uids.into_iter().partition(|&u| u <= last_uid);
        if !done.is_empty() {
            tracing::debug!(
                count = done.len(),
                "deleting messages processed before a restart"
            );
            imap::delete(session, &done, limit).await?;
        }
        for uid in new {
            if stop.is_cancelled() {
                return Ok(());
            }
            let Some(bytes) = imap::fetch_body(session, uid, limit).await? else {
                continue;
            };
            let cursor = InboxCursor {
                uid_validity,
                last_uid: uid,
            };
            let outcome = self.commit(cursor, &bytes, handler)?;
            if let Outcome::Rejected(reason) = outcome {
                tracing::warn!(uid, %reason, "incoming envelope dropped");
                self.events.emit(Event::IncomingDropped { reason });
            }
            // Stopping here is safe: the effects are committed, and the next start deletes
            // the message without processing it again.
            if stop.is_cancelled() {
                return Ok(());
            }
            imap::delete(session, &[uid], limit).await?;
        }
        Ok(())
    }

    /// The handler's effects, the envelope's key and the cursor, in one transaction.
    fn commit<H, E>(
        &self,
        cursor: InboxCursor,
        bytes: &[u8],
        handler: &mut H,
    ) -> Result<Outcome, DbError>
    where
        H: FnMut(&Transaction<'_>, &Incoming<'_>) -> Result<(), E>,
        E: std::fmt::Display,
    {
        let key = message_key(bytes, cursor.uid_validity, cursor.last_uid);
        let now = unix_millis();
        self.db
            .transaction(|tx| {
                let outcome = if db::inbox::is_processed(tx, &key)? {
                    Outcome::Duplicate
                } else {
                    let incoming = Incoming {
                        bytes,
                        key: &key,
                        uid: cursor.last_uid,
                    };
                    tx.execute_batch("SAVEPOINT handler")?;
                    match handler(tx, &incoming) {
                        Ok(()) => {
                            tx.execute_batch("RELEASE handler")?;
                            Outcome::Processed
                        }
                        Err(error) => {
                            tx.execute_batch("ROLLBACK TO handler; RELEASE handler")?;
                            Outcome::Rejected(error.to_string())
                        }
                    }
                };
                db::inbox::mark_processed(tx, &key, now)?;
                db::inbox::store_cursor(tx, cursor)?;
                Ok::<_, DbError>(outcome)
            })
            .inspect(|outcome| {
                if matches!(outcome, Outcome::Duplicate) {
                    tracing::debug!(uid = cursor.last_uid, "duplicate envelope skipped");
                }
            })
    }

    /// Waits in IDLE for news, a timeout or `stop`. Returns the session to sync again, or
    /// `None` when stopped.
    async fn idle(
        &self,
        session: ImapSession,
        stop: &CancellationToken,
    ) -> Result<Option<ImapSession>, TransportError> {
        let limit = self.options.io_timeout;
        let unsolicited = session.unsolicited_responses.clone();
        let mut idle = session.idle();
        imap::timed("IDLE", limit, idle.init()).await?;
        // News that arrived between the last sync and IDLE came with IDLE's own responses.
        let has_news = std::iter::from_fn(|| unsolicited.try_recv().ok()).any(|r| {
            matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            )
        });
        let mut stopped = false;
        if !has_news {
            let (wait, _interrupt) = idle.wait_with_timeout(self.options.idle_timeout);
            tokio::select! {
                () = stop.cancelled() => stopped = true,
                response = wait => match response? {
                    IdleResponse::NewData(_) | IdleResponse::Timeout => {}
                    IdleResponse::ManualInterrupt => stopped = true,
                },
            }
        }
        let mut session = imap::timed("DONE", limit, idle.done()).await?;
        if stopped {
            let _ = tokio::time::timeout(limit, session.logout()).await;
            return Ok(None);
        }
        Ok(Some(session))
    }
}

/// The key an envelope is de-duplicated by: `mid:` and its Message-ID when it has one
/// (parsed with mail-parser), else `uid:<uidvalidity>:<uid>`. Never fails, whatever the
/// bytes.
pub fn message_key(bytes: &[u8], uid_validity: u32, uid: u32) -> MessageKey {
    let message_id = mail_parser::MessageParser::new()
        .parse_headers(bytes)
        .and_then(|m| m.message_id().map(str::to_owned))
        .filter(|id| !id.is_empty() && id.len() <= 998);
    match message_id {
        Some(id) => MessageKey(format!("mid:{id}")),
        None => MessageKey(format!("uid:{uid_validity}:{uid}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_message_id_or_the_mailbox_place() {
        let with_id = b"From: a@b.test\r\nMessage-ID: <abc@b.test>\r\n\r\nbody";
        assert_eq!(
            message_key(with_id, 7, 3),
            MessageKey("mid:abc@b.test".into())
        );
        let without = b"From: a@b.test\r\n\r\nbody";
        assert_eq!(message_key(without, 7, 3), MessageKey("uid:7:3".into()));
        assert_eq!(message_key(b"", 1, 2), MessageKey("uid:1:2".into()));
        assert_eq!(message_key(&[0xff; 64], 1, 2), MessageKey("uid:1:2".into()));
    }
}
