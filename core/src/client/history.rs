//! How stored content becomes a chat history: replies, reactions, edits, deletions and files
//! folded onto the messages they point at.
//!
//! Every application message is stored once under its id, whatever its kind. Reactions and
//! edits stay rows of their own and are folded in when the history is read, so their
//! arrival order does not matter (an edit that arrives before its target is shown once the
//! target arrives). A deletion erases at once: the target's content is emptied and every
//! edit of it removed (with `secure_delete` on, the bytes leave the file too); a deletion
//! that arrives before its target erases the target as it is stored. The engine's
//! exactly-once table, not these rows, keeps a removed edit from coming back. Only the target's
//! sender (any device of the same identity) may edit or delete it; other attempts are
//! ignored. File chunks go to `file_chunks`; the file's message row (id = the file id) is
//! made when its last chunk arrives, so a file is shown once and whole.
use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::store::insert_message;
use super::{ClientError, StoredMessage};
use crate::content::{Content, MessageId};

/// A message as a chat shows it, with everything that points at it folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The message id, hex (the same on every device).
    pub id: String,
    /// The sending device's address.
    pub sender: String,
    /// When the sender sent it, Unix seconds.
    pub sent_at: u64,
    /// True for messages this account sent.
    pub is_outgoing: bool,
    /// What it shows.
    pub body: MessageBody,
    /// The message it replies to (hex id), if any.
    pub reply_to: Option<String>,
    /// True when its sender edited it.
    pub edited: bool,
    /// Reactions: each emoji with the devices that reacted with it, in order of reaction.
    pub reactions: BTreeMap<String, Vec<String>>,
}

/// The body of a shown message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageBody {
    /// Text (after the sender's latest edit).
    Text(String),
    /// A file, complete on this device; fetch it with `Client::file`.
    File {
        /// Its name as the sender gave it.
        name: String,
        /// Its media type.
        mime: String,
        /// Its length in bytes.
        len: u64,
    },
    /// Deleted by its sender.
    Deleted,
}

/// A received file.
#[derive(Clone, PartialEq, Eq)]
pub struct FileData {
    /// Its name as the sender gave it.
    pub name: String,
    /// Its media type.
    pub mime: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field("mime", &self.mime)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// What storing one message changed, for the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A new message to show (a text, or a file whose last chunk arrived).
    New(String),
    /// An existing message changed (reaction, edit): its id.
    Changed(String),
    /// A message was deleted: its id, and the ids whose text was erased.
    Erased(String, Vec<MessageId>),
    /// Nothing to show (a duplicate, a chunk of an incomplete file, or a change to a
    /// message not here yet).
    Nothing,
}

/// Stores one message of `chat` from the identity `identity`, exactly once by id.
pub(crate) fn store(
    db: &Connection,
    chat: i64,
    message: &StoredMessage,
    identity: &[u8; 32],
    now: u64,
) -> Result<Stored, ClientError> {
    match &message.content {
        Content::FileChunk { .. } => return store_chunk(db, chat, message, identity, now),
        Content::Text { .. }
        | Content::Reaction { .. }
        | Content::Edit { .. }
        | Content::Delete { .. } => {}
        // Renames, leave requests and admin grants are group state, handled by the engine.
        _ => return Ok(Stored::Nothing),
    }
    if !insert_message(db, chat, message, identity, now)? {
        return Ok(Stored::Nothing);
    }
    match &message.content {
        Content::Reaction { target, .. } | Content::Edit { target, .. } => {
            changed_if_present(db, target)
        }
        Content::Delete { target } => {
            let target_hex = hex::encode(target.0);
            db.execute(
                "INSERT OR IGNORE INTO message_deletions (target, identity) VALUES (?1, ?2)",
                params![target_hex, &identity[..]],
            )?;
            match shown_owner(db, &target_hex)? {
                Some(owner) if owner == identity[..] => {
                    let erased = erase(db, &target_hex)?;
                    Ok(Stored::Erased(target_hex, erased))
                }
                Some(_) => {
                    tracing::debug!("ignored a deletion of someone else's message");
                    Ok(Stored::Nothing)
                }
                None => Ok(Stored::Nothing),
            }
        }
        _ => shown_or_erased(db, &message.id, identity),
    }
}

/// A newly stored text or file: shown, or erased at once if its deletion came first.
fn shown_or_erased(db: &Connection, id: &str, identity: &[u8; 32]) -> Result<Stored, ClientError> {
    if deletion_waiting(db, id, identity)? {
        let erased = erase(db, id)?;
        return Ok(Stored::Erased(id.to_owned(), erased));
    }
    Ok(Stored::New(id.to_owned()))
}

fn changed_if_present(db: &Connection, target: &MessageId) -> Result<Stored, ClientError> {
    let target = hex::encode(target.0);
    Ok(match sender_of(db, &target)? {
        Some(_) => Stored::Changed(target),
        None => Stored::Nothing,
    })
}

fn sender_of(db: &Connection, id: &str) -> Result<Option<Vec<u8>>, ClientError> {
    Ok(db
        .query_row(
            "SELECT sender_identity FROM messages WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?)
}

/// The sender identity of `id` if it is a shown message (a text or a file, deleted or not).
fn shown_owner(db: &Connection, id: &str) -> Result<Option<Vec<u8>>, ClientError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = db
        .query_row(
            "SELECT sender_identity, content FROM messages WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(owner, content)| {
        let shown = content.is_empty()
            || matches!(
                serde_json::from_slice(&content),
                Ok(Content::Text { .. } | Content::FileChunk { .. })
            );
        shown.then_some(owner)
    }))
}

/// The sender identity of `id` if it is a text or file of `group` that is not deleted.
pub(crate) fn live_owner(
    db: &Connection,
    group: &crate::group::GroupId,
    id: &str,
) -> Result<Option<Vec<u8>>, ClientError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = db
        .query_row(
            "SELECT m.sender_identity, m.content FROM messages m
             JOIN chats c ON c.id = m.chat_id WHERE m.id = ?1 AND c.group_id = ?2",
            params![id, group.0],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(owner, content)| {
        matches!(
            serde_json::from_slice(&content),
            Ok(Content::Text { .. } | Content::FileChunk { .. })
        )
        .then_some(owner)
    }))
}

/// True if a deletion of `id` by `identity` arrived before the message itself.
fn deletion_waiting(db: &Connection, id: &str, identity: &[u8; 32]) -> Result<bool, ClientError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM message_deletions WHERE target = ?1 AND identity = ?2",
            params![id, &identity[..]],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Empties a message's content and removes its edits and its file chunks; returns the ids
/// whose text is gone (the message and its edits), so the engine can forget its copies.
fn erase(db: &Connection, id: &str) -> Result<Vec<MessageId>, ClientError> {
    db.execute("UPDATE messages SET content = X'' WHERE id = ?1", [id])?;
    let mut stmt = db.prepare_cached(
        "SELECT id, content FROM messages WHERE content LIKE '%\"type\":\"edit\"%' AND content LIKE ?1",
    )?;
    let edits: Vec<String> = stmt
        .query_map([format!("%{id}%")], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?
        .filter_map(Result::ok)
        .filter(|(_, content)| {
            matches!(serde_json::from_slice(content),
                     Ok(Content::Edit { target, .. }) if hex::encode(target.0) == id)
        })
        .map(|(edit, _)| edit)
        .collect();
    for edit in &edits {
        db.execute("DELETE FROM messages WHERE id = ?1", [edit])?;
    }
    db.execute("DELETE FROM file_chunks WHERE file_id = ?1", [id])?;
    Ok(std::iter::once(id)
        .chain(edits.iter().map(String::as_str))
        .filter_map(message_id)
        .collect())
}

fn message_id(hex_id: &str) -> Option<MessageId> {
    hex::decode(hex_id).ok()?.try_into().ok().map(MessageId)
}

fn store_chunk(
    db: &Connection,
    chat: i64,
    message: &StoredMessage,
    identity: &[u8; 32],
    now: u64,
) -> Result<Stored, ClientError> {
    let Content::FileChunk {
        file,
        name,
        mime,
        total_len,
        index,
        count,
        data,
    } = &message.content
    else {
        return Ok(Stored::Nothing);
    };
    let file_id = hex::encode(file.0);
    if *index >= *count || sender_of(db, &file_id)?.is_some() {
        return Ok(Stored::Nothing);
    }
    let added = db.execute(
        "INSERT OR IGNORE INTO file_chunks (file_id, idx, count, data) VALUES (?1, ?2, ?3, ?4)",
        params![file_id, index, count, data],
    )?;
    if added == 0 {
        return Ok(Stored::Nothing);
    }
    let (have, len): (u32, i64) = db.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM file_chunks
         WHERE file_id = ?1 AND count = ?2",
        params![file_id, count],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if have < *count {
        return Ok(Stored::Nothing);
    }
    if len as u64 != *total_len {
        tracing::warn!("a file's chunks do not add up to its length; dropped");
        db.execute("DELETE FROM file_chunks WHERE file_id = ?1", [&file_id])?;
        return Ok(Stored::Nothing);
    }
    // The file's row: the chunk's metadata without data; its bytes stay in file_chunks.
    let row = StoredMessage {
        id: file_id.clone(),
        content: Content::FileChunk {
            file: *file,
            name: name.clone(),
            mime: mime.clone(),
            total_len: *total_len,
            index: 0,
            count: *count,
            data: Vec::new(),
        },
        ..message.clone()
    };
    insert_message(db, chat, &row, identity, now)?;
    shown_or_erased(db, &file_id, identity)
}

/// The bytes of a complete file (`id` = the file's message id, hex).
pub(crate) fn file(db: &Connection, id: &str) -> Result<Option<FileData>, ClientError> {
    let content: Option<Vec<u8>> = db
        .query_row("SELECT content FROM messages WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(Ok(Content::FileChunk { name, mime, .. })) =
        content.map(|c| serde_json::from_slice::<Content>(&c))
    else {
        return Ok(None);
    };
    let mut stmt = db.prepare("SELECT data FROM file_chunks WHERE file_id = ?1 ORDER BY idx")?;
    let mut bytes = Vec::new();
    for chunk in stmt.query_map([id], |row| row.get::<_, Vec<u8>>(0))? {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(Some(FileData { name, mime, bytes }))
}

/// One stored row, as read back for folding.
struct Row {
    message: StoredMessage,
    identity: Vec<u8>,
    deleted: bool,
}

/// The history of a chat: shown messages oldest first, with reactions and edits folded in.
pub(crate) fn chat_history(
    db: &Connection,
    group: &crate::group::GroupId,
) -> Result<Vec<ChatMessage>, ClientError> {
    let rows = rows(db, group)?;
    let mut shown: Vec<ChatMessage> = Vec::new();
    let mut owners: BTreeMap<String, (usize, Vec<u8>)> = BTreeMap::new();
    for row in rows.iter().filter(|r| shows(r)) {
        owners.insert(row.message.id.clone(), (shown.len(), row.identity.clone()));
        shown.push(shown_message(row));
    }
    for row in rows.iter().filter(|r| !r.deleted) {
        match &row.message.content {
            Content::Edit { target, body } => {
                if let Some((at, owner)) = owners.get(&hex::encode(target.0)) {
                    let message = &mut shown[*at];
                    if *owner == row.identity && matches!(message.body, MessageBody::Text(_)) {
                        message.body = MessageBody::Text(body.clone());
                        message.edited = true;
                    }
                }
            }
            Content::Reaction {
                target,
                emoji,
                is_removal,
            } => {
                if let Some((at, _)) = owners.get(&hex::encode(target.0)) {
                    let senders = shown[*at].reactions.entry(emoji.clone()).or_default();
                    senders.retain(|s| *s != row.message.sender);
                    if !is_removal {
                        senders.push(row.message.sender.clone());
                    }
                }
            }
            _ => {}
        }
    }
    for message in &mut shown {
        message.reactions.retain(|_, senders| !senders.is_empty());
    }
    Ok(shown)
}

/// Texts and files are shown (deleted ones as such); what points at them is folded in.
fn shows(row: &Row) -> bool {
    row.deleted
        || matches!(
            row.message.content,
            Content::Text { .. } | Content::FileChunk { .. }
        )
}

fn shown_message(row: &Row) -> ChatMessage {
    let m = &row.message;
    let (body, reply_to) = match &m.content {
        _ if row.deleted => (MessageBody::Deleted, None),
        Content::Text { body, reply_to } => (
            MessageBody::Text(body.clone()),
            reply_to.map(|id| hex::encode(id.0)),
        ),
        Content::FileChunk {
            name,
            mime,
            total_len,
            ..
        } => (
            MessageBody::File {
                name: name.clone(),
                mime: mime.clone(),
                len: *total_len,
            },
            None,
        ),
        _ => (MessageBody::Deleted, None),
    };
    ChatMessage {
        id: m.id.clone(),
        sender: m.sender.clone(),
        sent_at: m.sent_at,
        is_outgoing: m.is_outgoing,
        body,
        reply_to,
        edited: false,
        reactions: BTreeMap::new(),
    }
}

fn rows(db: &Connection, group: &crate::group::GroupId) -> Result<Vec<Row>, ClientError> {
    let mut stmt = db.prepare(
        "SELECT m.id, m.sender_device, m.content, m.sent_at, m.state, m.sender_identity
         FROM messages m JOIN chats c ON c.id = m.chat_id WHERE c.group_id = ?1
         ORDER BY m.sent_at, m.rowid",
    )?;
    let mut out = Vec::new();
    let mut query = stmt.query([&group.0])?;
    while let Some(row) = query.next()? {
        let state: String = row.get(4)?;
        let content_bytes: Vec<u8> = row.get(2)?;
        let deleted = content_bytes.is_empty();
        let malformed = |what| ClientError::Malformed { what };
        let content = if deleted {
            // A deleted row keeps no content; what it was no longer matters.
            Content::Text {
                body: String::new(),
                reply_to: None,
            }
        } else {
            serde_json::from_slice::<Content>(&content_bytes)
                .map_err(|_| malformed("message content"))?
        };
        out.push(Row {
            message: StoredMessage {
                id: row.get(0)?,
                sender: String::from_utf8(row.get::<_, Vec<u8>>(1)?)
                    .map_err(|_| malformed("message sender"))?,
                content,
                sent_at: row.get::<_, i64>(3)? as u64,
                is_outgoing: state == "sent",
            },
            identity: row.get(5)?,
            deleted,
        });
    }
    Ok(out)
}
