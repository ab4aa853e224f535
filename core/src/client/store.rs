//! The client's rows: this device's envelope key, the envelope keys of devices it may
//! seal to, group chats and the messages shown in them.
use kith_crypto::envelope::{DeviceKeypair, DevicePublicKey};
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

use super::{ClientError, StoredMessage};
use crate::content::Content;
use crate::group::GroupId;

/// This device's envelope key, made and stored on first use.
pub(crate) fn envelope_key(db: &Connection) -> Result<DeviceKeypair, ClientError> {
    let stored: Option<Zeroizing<Vec<u8>>> = db
        .query_row("SELECT secret FROM envelope_key", [], |row| row.get(0))
        .optional()?
        .map(Zeroizing::new);
    if let Some(secret) = stored {
        let secret: [u8; 32] =
            secret
                .as_slice()
                .try_into()
                .map_err(|_| ClientError::Malformed {
                    what: "envelope key",
                })?;
        return Ok(DeviceKeypair::from_secret_bytes(secret));
    }
    let key = DeviceKeypair::generate(&mut rand::rngs::OsRng);
    db.execute(
        "INSERT INTO envelope_key (singleton, secret) VALUES (1, ?1)",
        [&key.to_secret_bytes()[..]],
    )?;
    Ok(key)
}

/// Remembers the envelope key of the device at `address`.
pub(crate) fn learn_peer(
    db: &Connection,
    address: &str,
    key: &DevicePublicKey,
    now: u64,
) -> Result<(), ClientError> {
    db.execute(
        "INSERT INTO peer_envelope_keys (address, public_key, learned_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (address) DO UPDATE SET public_key = ?2, learned_at = ?3",
        params![address, &key.to_bytes()[..], now as i64],
    )?;
    Ok(())
}

/// The envelope key of the device at `address`, if we know it.
pub(crate) fn peer_key(db: &Connection, address: &str) -> Result<DevicePublicKey, ClientError> {
    let bytes: Vec<u8> = db
        .query_row(
            "SELECT public_key FROM peer_envelope_keys WHERE address = ?1",
            [address],
            |row| row.get(0),
        )
        .optional()?
        .ok_or(ClientError::UnknownDevice)?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ClientError::Malformed {
            what: "peer envelope key",
        })?;
    Ok(DevicePublicKey::from_bytes(bytes))
}

/// The chat row of a group, made if missing.
pub(crate) fn chat_of(db: &Connection, group: &GroupId, now: u64) -> Result<i64, ClientError> {
    db.execute(
        "INSERT OR IGNORE INTO chats (kind, group_id, created_at) VALUES ('group', ?1, ?2)",
        params![group.0, now as i64],
    )?;
    Ok(db.query_row(
        "SELECT id FROM chats WHERE group_id = ?1",
        [&group.0],
        |row| row.get(0),
    )?)
}

/// Stores a message; false if its id was already stored.
pub(crate) fn insert_message(
    db: &Connection,
    chat: i64,
    message: &StoredMessage,
    identity: &[u8; 32],
    received_at: u64,
) -> Result<bool, ClientError> {
    let content = serde_json::to_vec(&message.content).map_err(|_| ClientError::Malformed {
        what: "message content",
    })?;
    let state = if message.is_outgoing {
        "sent"
    } else {
        "received"
    };
    let inserted = db.execute(
        "INSERT OR IGNORE INTO messages (id, chat_id, sender_identity, sender_device, content,
                                         sent_at, received_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            message.id,
            chat,
            &identity[..],
            message.sender.as_bytes(),
            content,
            message.sent_at as i64,
            received_at as i64,
            state
        ],
    )?;
    Ok(inserted == 1)
}

/// The messages of a group, oldest first (deleted ones, whose content is gone, left out).
pub(crate) fn messages(
    db: &Connection,
    group: &GroupId,
) -> Result<Vec<StoredMessage>, ClientError> {
    let mut stmt = db.prepare(
        "SELECT m.id, m.sender_device, m.content, m.sent_at, m.state FROM messages m
         JOIN chats c ON c.id = m.chat_id WHERE c.group_id = ?1 AND LENGTH(m.content) > 0
         ORDER BY m.sent_at, m.rowid",
    )?;
    let rows = stmt.query_map([&group.0], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, sender, content, sent_at, state) = row?;
        let malformed = |what| ClientError::Malformed { what };
        out.push(StoredMessage {
            id,
            sender: String::from_utf8(sender).map_err(|_| malformed("message sender"))?,
            content: serde_json::from_slice::<Content>(&content)
                .map_err(|_| malformed("message content"))?,
            sent_at: sent_at as u64,
            is_outgoing: state == "sent",
        });
    }
    Ok(out)
}
