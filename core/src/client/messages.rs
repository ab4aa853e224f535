//! Sending what people say: texts, replies, reactions, edits, deletions and files; and
//! reading a chat's history back.
use rand::rngs::OsRng;
use rusqlite::Connection;

use super::history::{self, ChatMessage, FileData, Stored};
use super::{store, Client, ClientError, StoredMessage};
use crate::content::{Content, MessageId};
use crate::events::{ChatId, Event, MessageId as EventMessageId};
use crate::group::GroupId;

/// The largest file [`Client::send_file`] sends (it is held in memory whole).
pub const MAX_FILE_LEN: usize = 100 * 1024 * 1024;

/// The default size of one file chunk: one chunk per envelope, so that with MLS, JSON and
/// ASCII-armor overhead (about ×1.8) an envelope stays far below a relay's usual 30 MiB
/// limit and within the 16 MiB frame limit.
pub const DEFAULT_FILE_CHUNK_LEN: usize = 4 * 1024 * 1024;

impl Client {
    /// Sends a text to `group` and stores it as sent; returns its id (hex).
    pub fn send_text(&self, group: &GroupId, text: &str) -> Result<String, ClientError> {
        self.send_content(
            group,
            Content::Text {
                body: text.to_owned(),
                reply_to: None,
            },
        )
    }

    /// Sends a text replying to the message `to` (hex id) of `group`.
    pub fn reply(&self, group: &GroupId, to: &str, text: &str) -> Result<String, ClientError> {
        let to = self.target(group, to, false)?;
        self.send_content(
            group,
            Content::Text {
                body: text.to_owned(),
                reply_to: Some(to),
            },
        )
    }

    /// Reacts to the message `target` (hex id) with `emoji`, or withdraws that reaction.
    pub fn react(
        &self,
        group: &GroupId,
        target: &str,
        emoji: &str,
        remove: bool,
    ) -> Result<String, ClientError> {
        let target = self.target(group, target, false)?;
        self.send_content(
            group,
            Content::Reaction {
                target,
                emoji: emoji.to_owned(),
                is_removal: remove,
            },
        )
    }

    /// Replaces the text of one of this account's messages.
    pub fn edit(&self, group: &GroupId, target: &str, text: &str) -> Result<String, ClientError> {
        let target = self.target(group, target, true)?;
        self.send_content(
            group,
            Content::Edit {
                target,
                body: text.to_owned(),
            },
        )
    }

    /// Deletes one of this account's messages on every member device.
    pub fn delete(&self, group: &GroupId, target: &str) -> Result<String, ClientError> {
        let target = self.target(group, target, true)?;
        self.send_content(group, Content::Delete { target })
    }

    /// Sends a file in chunks of at most the configured chunk length (each chunk one
    /// application message); returns the file's message id (hex).
    pub fn send_file(
        &self,
        group: &GroupId,
        name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> Result<String, ClientError> {
        if bytes.len() > MAX_FILE_LEN {
            return Err(ClientError::FileTooLarge {
                len: bytes.len(),
                max: MAX_FILE_LEN,
            });
        }
        let chunk_len = self.file_chunk_len();
        let count = bytes.len().div_ceil(chunk_len).max(1);
        let file = MessageId::generate(&mut OsRng);
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[]]
        } else {
            bytes.chunks(chunk_len).collect()
        };
        self.command(|tx, now, events| {
            for (index, data) in chunks.iter().enumerate() {
                let content = Content::FileChunk {
                    file,
                    name: name.to_owned(),
                    mime: mime.to_owned(),
                    total_len: bytes.len() as u64,
                    index: index as u32,
                    count: count as u32,
                    data: data.to_vec(),
                };
                self.send_in(tx, now, group, content, events)?;
            }
            Ok(hex::encode(file.0))
        })
    }

    /// Sends any content to `group` and stores it as sent; returns its id (hex).
    pub fn send_content(&self, group: &GroupId, content: Content) -> Result<String, ClientError> {
        self.command(|tx, now, events| self.send_in(tx, now, group, content, events))
    }

    /// The chat history of `group`: shown messages oldest first, with replies, reactions,
    /// edits and deletions applied.
    pub fn history(&self, group: &GroupId) -> Result<Vec<ChatMessage>, ClientError> {
        self.transaction(|tx, _| history::chat_history(tx, group))
    }

    /// A complete file by its message id (hex), if this device has it.
    pub fn file(&self, id: &str) -> Result<Option<FileData>, ClientError> {
        self.transaction(|tx, _| history::file(tx, id))
    }

    fn send_in(
        &self,
        tx: &Connection,
        now: u64,
        group: &GroupId,
        content: Content,
        events: &mut Vec<Event>,
    ) -> Result<String, ClientError> {
        let (id, out) = self
            .engine
            .send(tx, now, &mut OsRng, group, content.clone())?;
        let message = StoredMessage {
            id: hex::encode(id.0),
            sender: self.account.address().to_owned(),
            content,
            sent_at: now,
            is_outgoing: true,
        };
        let chat = store::chat_of(tx, group, now)?;
        let identity = self.account.identity().public_key().to_bytes();
        let stored = history::store(tx, chat, &message, &identity, now)?;
        // Our own sends show no "received"; a change (our deletion) is reported.
        if !matches!(stored, Stored::New(_)) {
            events.extend(self.after_store(tx, group, chat, stored)?);
        }
        self.apply(tx, now, out, events)?;
        Ok(message.id)
    }

    /// Checks that `target` (hex) is a shown message of `group` (and this account's own,
    /// when `own`); returns its id.
    fn target(&self, group: &GroupId, target: &str, own: bool) -> Result<MessageId, ClientError> {
        let unknown = || ClientError::UnknownMessage {
            id: target.to_owned(),
        };
        let bytes: [u8; 16] = hex::decode(target.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(unknown)?;
        let owner = self
            .transaction(|tx, _| history::live_owner(tx, group, &hex::encode(bytes)))?
            .ok_or_else(unknown)?;
        if own && owner != self.account.identity().public_key().to_bytes()[..] {
            return Err(ClientError::NotOwnMessage {
                id: target.to_owned(),
            });
        }
        Ok(MessageId(bytes))
    }
}

impl Client {
    /// What follows storing a message: the engine forgets its copies of erased texts, and
    /// the event to emit.
    pub(crate) fn after_store(
        &self,
        tx: &Connection,
        group: &GroupId,
        chat: i64,
        stored: Stored,
    ) -> Result<Option<Event>, ClientError> {
        if let Stored::Erased(_, ids) = &stored {
            self.engine.forget_sent(tx, group, ids)?;
        }
        Ok(event_of(chat, stored))
    }
}

/// The bus event for what storing a message changed.
fn event_of(chat: i64, stored: Stored) -> Option<Event> {
    match stored {
        Stored::New(id) => Some(Event::MessageReceived {
            chat: ChatId(chat),
            message: EventMessageId(id),
        }),
        Stored::Changed(id) | Stored::Erased(id, _) => Some(Event::MessageChanged {
            chat: ChatId(chat),
            message: EventMessageId(id),
        }),
        Stored::Nothing => None,
    }
}
