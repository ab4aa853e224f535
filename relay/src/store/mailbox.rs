//! Mailboxes: delivery (with quota trimming and de-duplication), listing, fetching, flags,
//! expunge and expiry.
use std::collections::BTreeSet;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use super::{AcceptReport, Accepted, Store, UnixTime};
use crate::errors::StoreError;

/// IMAP system flags of a stored message, as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// `\Seen`.
    pub const SEEN: Flags = Flags(1);
    /// `\Answered`.
    pub const ANSWERED: Flags = Flags(2);
    /// `\Flagged`.
    pub const FLAGGED: Flags = Flags(4);
    /// `\Deleted`.
    pub const DELETED: Flags = Flags(8);
    /// `\Draft`.
    pub const DRAFT: Flags = Flags(16);

    /// Whether every flag in `other` is set here.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two sets.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// This set without `other`'s flags.
    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
}

/// How `set_flags` combines the given flags with the stored ones (IMAP STORE's `+`, `-`, or
/// plain FLAGS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsMode {
    /// Set these flags too.
    Add,
    /// Clear these flags.
    Remove,
    /// Replace the stored flags with these.
    Replace,
}

/// What SELECT reports about a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    /// UIDVALIDITY; never changes for the life of the mailbox.
    pub uidvalidity: u32,
    /// The UID the next delivered message will get.
    pub uidnext: u32,
    /// Number of messages.
    pub exists: u32,
    /// Number of messages without `\Seen`.
    pub unseen: u32,
}

/// One message in a mailbox listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageMeta {
    /// Its UID.
    pub uid: u32,
    /// Its size in bytes (RFC822.SIZE).
    pub size: u64,
    /// Its flags.
    pub flags: Flags,
    /// When the relay accepted it (INTERNALDATE).
    pub received_at: UnixTime,
}

impl Store {
    /// Stores an accepted message: once in the `messages` table, referenced from every local
    /// mailbox and from one queue entry per remote domain, all in one durable transaction.
    pub async fn accept(
        &self,
        accepted: Accepted,
        now: UnixTime,
    ) -> Result<AcceptReport, StoreError> {
        let quota = self.inner.limits.mailbox_quota_bytes;
        let expiry = self.inner.limits.expiry_secs;
        self.inner
            .writer
            .write(move |conn| accept_in(conn, accepted, quota, expiry, now))
            .await
    }

    /// SELECT's view of a mailbox.
    pub async fn mailbox_status(&self, address: &str) -> Result<MailboxStatus, StoreError> {
        let address = address.to_ascii_lowercase();
        self.read(move |conn| {
            let (uidvalidity, uidnext) = conn
                .query_row(
                    "SELECT uidvalidity, next_uid FROM accounts WHERE address = ?1",
                    [&address],
                    |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?)),
                )
                .optional()?
                .ok_or(StoreError::NoSuchMailbox)?;
            let (exists, unseen) = conn.query_row(
                "SELECT count(*), coalesce(sum((flags & 1) = 0), 0) FROM mailbox WHERE address = ?1",
                [&address],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?)),
            )?;
            Ok(MailboxStatus { uidvalidity, uidnext, exists, unseen })
        })
        .await
    }

    /// Every message in a mailbox, by ascending UID.
    pub async fn list_messages(&self, address: &str) -> Result<Vec<MessageMeta>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT uid, size, flags, received_at FROM mailbox WHERE address = ?1 ORDER BY uid",
            )?;
            let rows = stmt.query_map([&address], |r| {
                Ok(MessageMeta {
                    uid: r.get(0)?,
                    size: r.get(1)?,
                    flags: Flags(r.get(2)?),
                    received_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The full message with this UID, if it is still there.
    pub async fn fetch_body(&self, address: &str, uid: u32) -> Result<Option<Bytes>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.read(move |conn| {
            let body: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT m.body FROM mailbox b JOIN messages m ON m.id = b.message_id
                     WHERE b.address = ?1 AND b.uid = ?2",
                    params![address, uid],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(body.map(Bytes::from))
        })
        .await
    }

    /// Changes flags of the given UIDs (missing UIDs are skipped); returns the new flags of
    /// every message that exists.
    pub async fn set_flags(
        &self,
        address: &str,
        uids: Vec<u32>,
        flags: Flags,
        mode: FlagsMode,
    ) -> Result<Vec<(u32, Flags)>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.inner
            .writer
            .write(move |conn| {
                let mut out = Vec::with_capacity(uids.len());
                let mut read = conn
                    .prepare_cached("SELECT flags FROM mailbox WHERE address = ?1 AND uid = ?2")?;
                let mut write = conn.prepare_cached(
                    "UPDATE mailbox SET flags = ?3 WHERE address = ?1 AND uid = ?2",
                )?;
                for uid in uids {
                    let Some(old) = read
                        .query_row(params![address, uid], |r| r.get::<_, u8>(0))
                        .optional()?
                    else {
                        continue;
                    };
                    let new = match mode {
                        FlagsMode::Add => Flags(old).union(flags),
                        FlagsMode::Remove => Flags(old).without(flags),
                        FlagsMode::Replace => flags,
                    };
                    write.execute(params![address, uid, new.0])?;
                    out.push((uid, new));
                }
                Ok((out, vec![address]))
            })
            .await
    }

    /// Removes the messages flagged `\Deleted` (only those among `uids` if given); returns
    /// the UIDs removed, ascending.
    pub async fn expunge(
        &self,
        address: &str,
        uids: Option<Vec<u32>>,
    ) -> Result<Vec<u32>, StoreError> {
        let address = address.to_ascii_lowercase();
        let expiry = self.inner.limits.expiry_secs;
        self.inner
            .writer
            .write(move |conn| {
                let only: Option<BTreeSet<u32>> = uids.map(|u| u.into_iter().collect());
                let deleted: Vec<u32> = {
                    let mut stmt = conn.prepare_cached(
                        "SELECT uid FROM mailbox WHERE address = ?1 AND (flags & 8) != 0 ORDER BY uid",
                    )?;
                    let rows = stmt.query_map([&address], |r| r.get::<_, u32>(0))?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                let mut removed = Vec::new();
                for uid in deleted {
                    if only.as_ref().is_some_and(|set| !set.contains(&uid)) {
                        continue;
                    }
                    remove_from_mailbox(conn, &address, uid, expiry)?;
                    removed.push(uid);
                }
                let changed = if removed.is_empty() { vec![] } else { vec![address] };
                Ok((removed, changed))
            })
            .await
    }

    /// Deletes messages older than the expiry period and forgets old Message-IDs; returns
    /// how many messages were deleted.
    pub async fn expire(&self, now: UnixTime) -> Result<usize, StoreError> {
        let cutoff = now - self.inner.limits.expiry_secs;
        self.inner
            .writer
            .write(move |conn| {
                let old: Vec<(String, u32)> = {
                    let mut stmt =
                        conn.prepare("SELECT address, uid FROM mailbox WHERE received_at < ?1")?;
                    let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                for (address, uid) in &old {
                    remove_from_mailbox(conn, address, *uid, 0)?;
                }
                conn.execute("DELETE FROM delivered WHERE expires_at < ?1", [now])?;
                let mut changed: Vec<String> = old.iter().map(|(a, _)| a.clone()).collect();
                changed.sort_unstable();
                changed.dedup();
                Ok((old.len(), changed))
            })
            .await
    }
}

fn accept_in(
    conn: &Connection,
    accepted: Accepted,
    quota: u64,
    expiry: i64,
    now: UnixTime,
) -> Result<(AcceptReport, Vec<String>), StoreError> {
    let size = accepted.body.len() as u64;
    conn.execute(
        "INSERT INTO messages (body, size, received_at, refs) VALUES (?1, ?2, ?3, 0)",
        params![&accepted.body[..], size, now],
    )?;
    let message_id = conn.last_insert_rowid();
    let mut report = AcceptReport::default();
    let mut changed = Vec::new();
    let mut refs = 0i64;
    let local: BTreeSet<String> = accepted
        .local
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    for address in local {
        let Some((next_uid, used)) = conn
            .query_row(
                "SELECT next_uid, used_bytes FROM accounts WHERE address = ?1",
                [&address],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u64>(1)?)),
            )
            .optional()?
        else {
            report.unknown.push(address);
            continue;
        };
        if let Some(msgid) = &accepted.msgid {
            if already_delivered(conn, &address, msgid)? {
                report.duplicates += 1;
                continue;
            }
        }
        if size > quota {
            return Err(StoreError::LargerThanQuota { size, quota });
        }
        report.trimmed += trim_to_fit(conn, &address, used, size, quota, expiry)?;
        conn.execute(
            "INSERT INTO mailbox (address, uid, message_id, msgid, size, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![address, next_uid, message_id, accepted.msgid, size, now],
        )?;
        conn.execute(
            "UPDATE accounts SET next_uid = next_uid + 1, used_bytes = used_bytes + ?2
             WHERE address = ?1",
            params![address, size],
        )?;
        refs += 1;
        report.delivered += 1;
        changed.push(address);
    }
    for (domain, recipients) in &accepted.remote {
        conn.execute(
            "INSERT INTO queue (domain, sender, recipients, message_id, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![domain, accepted.sender, recipients.join("\n"), message_id, now],
        )?;
        refs += 1;
        report.queued += 1;
    }
    if refs == 0 {
        conn.execute("DELETE FROM messages WHERE id = ?1", [message_id])?;
    } else {
        conn.execute(
            "UPDATE messages SET refs = ?2 WHERE id = ?1",
            params![message_id, refs],
        )?;
    }
    Ok((report, changed))
}

fn already_delivered(conn: &Connection, address: &str, msgid: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM mailbox WHERE address = ?1 AND msgid = ?2)
             OR EXISTS (SELECT 1 FROM delivered WHERE address = ?1 AND msgid = ?2)",
        [address, msgid],
        |r| r.get(0),
    )
}

/// Deletes the oldest messages of a mailbox until `size` more bytes fit in `quota`.
fn trim_to_fit(
    conn: &Connection,
    address: &str,
    mut used: u64,
    size: u64,
    quota: u64,
    expiry: i64,
) -> Result<usize, StoreError> {
    let mut trimmed = 0;
    while used + size > quota {
        let Some((uid, old_size)) = conn
            .query_row(
                "SELECT uid, size FROM mailbox WHERE address = ?1 ORDER BY uid LIMIT 1",
                [address],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u64>(1)?)),
            )
            .optional()?
        else {
            break;
        };
        remove_from_mailbox(conn, address, uid, expiry)?;
        used = used.saturating_sub(old_size);
        trimmed += 1;
    }
    Ok(trimmed)
}

/// Removes one message from a mailbox, remembering its Message-ID for `remember_secs` so a
/// retried delivery is not stored again, and drops the body when nothing else refers to it.
fn remove_from_mailbox(
    conn: &Connection,
    address: &str,
    uid: u32,
    remember_secs: i64,
) -> Result<(), StoreError> {
    let (message_id, msgid, size, received_at): (i64, Option<String>, u64, i64) = conn.query_row(
        "DELETE FROM mailbox WHERE address = ?1 AND uid = ?2
         RETURNING message_id, msgid, size, received_at",
        params![address, uid],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    if let (Some(msgid), true) = (msgid, remember_secs > 0) {
        conn.execute(
            "INSERT OR IGNORE INTO delivered (address, msgid, expires_at) VALUES (?1, ?2, ?3)",
            params![address, msgid, received_at + remember_secs],
        )?;
    }
    conn.execute(
        "UPDATE accounts SET used_bytes = max(used_bytes - ?2, 0) WHERE address = ?1",
        params![address, size],
    )?;
    release_body(conn, message_id)?;
    Ok(())
}

/// Drops one reference to a message body, deleting it when none is left.
pub(super) fn release_body(conn: &Connection, message_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE messages SET refs = refs - 1 WHERE id = ?1",
        [message_id],
    )?;
    conn.execute(
        "DELETE FROM messages WHERE id = ?1 AND refs <= 0",
        [message_id],
    )?;
    Ok(())
}
