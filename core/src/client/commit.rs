//! What follows every commit of the client's: the WAL scrubbed after a deletion, the outbox
//! and (unless the timers themselves committed) the timers woken, the events emitted. One
//! place for commands, for `Client::committed` and for the inbox's publisher thread.
use std::sync::{mpsc, Arc};

use tokio::sync::Notify;

use crate::db::Database;
use crate::events::{Event, EventBus};

/// The after-commit work of one account; cheap to clone.
#[derive(Clone)]
pub(crate) struct AfterCommit {
    pub(crate) db: Database,
    pub(crate) bus: EventBus,
    pub(crate) outbox: Arc<Notify>,
    pub(crate) timers: Arc<Notify>,
}

impl AfterCommit {
    /// Runs the after-commit work for `events`.
    pub(crate) fn finish(&self, events: Vec<Event>, wake_timers: bool) {
        scrub_wal_after(&self.db, &events);
        self.outbox.notify_one();
        if wake_timers {
            self.timers.notify_one();
        }
        for event in events {
            self.bus.emit(event);
        }
    }

    /// A thread that finishes each batch of inbox events once the database lock is free
    /// again, i.e. after the transaction that produced them committed (or rolled back:
    /// then no batch was sent).
    pub(crate) fn spawn_publisher(&self) -> mpsc::Sender<Vec<Event>> {
        let (sender, receiver) = mpsc::channel::<Vec<Event>>();
        let after = self.clone();
        std::thread::spawn(move || {
            for batch in receiver {
                let _ = after.db.read(|_| Ok(()));
                after.finish(batch, true);
            }
        });
        sender
    }
}

/// After a deletion (or any change to a message), checkpoints the WAL and truncates it, so
/// the erased text does not linger in old WAL frames (`secure_delete` covers the main file
/// only). A failure is logged: the text is already gone from the database itself.
fn scrub_wal_after(db: &Database, events: &[Event]) {
    if !events
        .iter()
        .any(|e| matches!(e, Event::MessageChanged { .. }))
    {
        return;
    }
    let result = db.read(|conn| {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    });
    if let Err(error) = result {
        tracing::warn!(%error, "could not truncate the WAL after a deletion");
    }
}
