//! Wakes IMAP sessions waiting in IDLE when their mailbox changes.
//!
//! One `watch` channel per mailbox that someone is watching, holding a change counter. The
//! writer bumps it right after COMMIT, so a waiting session hears of a new message within
//! the time it takes to switch tasks. Channels nobody watches any more are dropped lazily.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Shared table of mailbox watchers.
#[derive(Clone, Default)]
pub(crate) struct Notifier {
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

impl Notifier {
    /// A receiver that changes whenever `mailbox` changes.
    pub(crate) fn watch(&self, mailbox: &str) -> watch::Receiver<u64> {
        let mut channels = self
            .channels
            .lock()
            .expect("notifier lock is never poisoned");
        if let Some(sender) = channels.get(mailbox) {
            return sender.subscribe();
        }
        if channels.len() > 1024 {
            channels.retain(|_, sender| sender.receiver_count() > 0);
        }
        let (sender, receiver) = watch::channel(0);
        channels.insert(mailbox.to_owned(), sender);
        receiver
    }

    /// Tells everyone watching `mailbox` that it changed.
    pub(crate) fn wake(&self, mailbox: &str) {
        let channels = self
            .channels
            .lock()
            .expect("notifier lock is never poisoned");
        if let Some(sender) = channels.get(mailbox) {
            sender.send_modify(|n| *n += 1);
        }
    }
}
