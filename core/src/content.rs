//! Application content: what travels inside an MLS application message.
//!
//! Plain serde types with one codec ([`AppMessage::encode`] / [`AppMessage::decode`], JSON),
//! in the manner of rustls's `msgs/`. Every message carries a sender-chosen random 16-byte
//! [`MessageId`], which is what receivers deduplicate on and what replies, reactions, edits
//! and deletions point at.
use base64::Engine as _;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// The largest encoded application message the codec accepts (16 MiB, the frame limit).
pub const MAX_CONTENT_LEN: usize = 16 * 1024 * 1024;

/// A message's stable id: 16 random bytes chosen by its sender.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(#[serde(with = "hex16")] pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    /// A text message, possibly a reply to an earlier one.
    Text {
        /// The text.
        body: String,
        /// The message this one replies to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
    },
    /// A reaction to a message (or the withdrawal of one).
    Reaction {
        /// The message reacted to.
        target: MessageId,
        /// The reaction, usually one emoji.
        emoji: String,
        /// True when this withdraws an earlier reaction with the same emoji.
        #[serde(default)]
        is_removal: bool,
    },
    /// A new text for one of the sender's earlier messages.
    Edit {
        /// The message edited.
        target: MessageId,
        /// Its new text.
        body: String,
    },
    /// The deletion of one of the sender's earlier messages.
    Delete {
        /// The message deleted.
        target: MessageId,
    },
    /// One chunk of a file; a file of `count` chunks is shown once all have arrived.
    FileChunk {
        /// The id shared by every chunk of this file.
        file: MessageId,
        /// The file's name as the sender gave it.
        name: String,
        /// Its media type.
        mime: String,
        /// The whole file's length in bytes.
        total_len: u64,
        /// This chunk's position, from 0.
        index: u32,
        /// How many chunks the file has.
        count: u32,
        /// This chunk's bytes.
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// A new name for the group (last writer wins, see `docs/groups.md`).
    Rename {
        /// The new name.
        name: String,
    },
    /// The sender's device asks to be removed from the group; a member commits the removal.
    LeaveRequest,
}

/// An application message: its id, when the sender says it sent it, and its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMessage {
    /// The message's stable id.
    pub id: MessageId,
    /// Sender's clock, seconds since the Unix epoch (informative; used to order renames).
    pub sent_at: u64,
    /// What it says.
    pub content: Content,
}

/// Why bytes are not an application message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The encoded message is larger than [`MAX_CONTENT_LEN`].
    #[error("application message of {len} bytes exceeds the limit of {MAX_CONTENT_LEN}")]
    TooLarge {
        /// The length given.
        len: usize,
    },
    /// The bytes are not a well-formed application message.
    #[error("malformed application message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl AppMessage {
    /// The message's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("content types always serialize to JSON")
    }

    /// Parses bytes made by [`AppMessage::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        if bytes.len() > MAX_CONTENT_LEN {
            return Err(ContentError::TooLarge { len: bytes.len() });
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

mod hex16 {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        let text: String = id.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return Err(D::Error::custom("a message id is 32 hex digits"));
        }
        let mut id = [0u8; 16];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digits = std::str::from_utf8(pair).map_err(D::Error::custom)?;
            id[i] = u8::from_str_radix(digits, 16).map_err(D::Error::custom)?;
        }
        Ok(id)
    }
}

/// Byte fields as base64 strings inside the JSON codecs (content and control frames).
pub(crate) mod b64 {
    use super::*;
    use serde::{de::Error as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(D::Error::custom)
    }
}

/// Lists of byte strings as lists of base64 strings.
pub(crate) mod b64_list {
    use super::*;
    use serde::{de::Error as _, ser::SerializeSeq as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(data: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(data.len()))?;
        for item in data {
            seq.serialize_element(&base64::engine::general_purpose::STANDARD.encode(item))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = <Vec<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        texts
            .iter()
            .map(|text| base64::engine::general_purpose::STANDARD.decode(text.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message_id() -> impl Strategy<Value = MessageId> {
        any::<[u8; 16]>().prop_map(MessageId)
    }

    fn content() -> impl Strategy<Value = Content> {
        prop_oneof![
            (".*", proptest::option::of(message_id()))
                .prop_map(|(body, reply_to)| Content::Text { body, reply_to }),
            (message_id(), ".{0,8}", any::<bool>()).prop_map(|(target, emoji, is_removal)| {
                Content::Reaction {
                    target,
                    emoji,
                    is_removal,
                }
            }),
            (message_id(), ".*").prop_map(|(target, body)| Content::Edit { target, body }),
            message_id().prop_map(|target| Content::Delete { target }),
            (
                message_id(),
                ".*",
                any::<u64>(),
                any::<(u32, u32)>(),
                proptest::collection::vec(any::<u8>(), 0..300)
            )
                .prop_map(|(file, name, total_len, (index, count), data)| {
                    Content::FileChunk {
                        file,
                        name,
                        mime: "application/octet-stream".into(),
                        total_len,
                        index,
                        count,
                        data,
                    }
                }),
            ".*".prop_map(|name| Content::Rename { name }),
            Just(Content::LeaveRequest),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(id in message_id(), sent_at in any::<u64>(), content in content()) {
            let message = AppMessage { id, sent_at, content };
            let decoded = AppMessage::decode(&message.encode()).expect("decodes");
            prop_assert_eq!(decoded, message);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AppMessage::decode(&bytes);
        }
    }

    #[test]
    fn rejects_bad_ids_and_oversize_input() {
        let bad = br#"{"id":"00","sent_at":1,"content":{"type":"leave_request"}}"#;
        assert!(matches!(
            AppMessage::decode(bad),
            Err(ContentError::Malformed(_))
        ));
        let huge = vec![b' '; MAX_CONTENT_LEN + 1];
        assert!(matches!(
            AppMessage::decode(&huge),
            Err(ContentError::TooLarge { .. })
        ));
    }
}
