//! The per-message hint carried in the Message-ID (PROTOCOL.md §5.4).
//!
//! `Message-ID: <hex(nonce ‖ tag)@domain>` with a fresh 16-byte random `nonce` and
//! `tag = HMAC-SHA256(hint_key, "kith envelope v1 hint" ‖ nonce)[..16]`. Without the hint key
//! the Message-ID is 32 random-looking bytes, so a relay cannot link two messages; a
//! recipient recomputes the tag with each of its keys to find the one to try.

use hmac::{Hmac, Mac};
use mail_parser::MessageParser;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::keys::OpenKey;

/// Length of the random nonce in the Message-ID.
pub const HINT_NONCE_LEN: usize = 16;
/// Length of the truncated MAC in the Message-ID.
pub const HINT_TAG_LEN: usize = 16;
const HINT_MAC_PREFIX: &[u8] = b"kith envelope v1 hint";

/// The hint tag for a nonce under a hint key.
pub(crate) fn hint_tag(hint_key: &[u8], nonce: &[u8; HINT_NONCE_LEN]) -> [u8; HINT_TAG_LEN] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(hint_key).expect("HMAC takes keys of any length");
    mac.update(HINT_MAC_PREFIX);
    mac.update(nonce);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; HINT_TAG_LEN];
    tag.copy_from_slice(&full[..HINT_TAG_LEN]);
    tag
}

/// The local part of the Message-ID: `hex(nonce ‖ tag)`.
pub(crate) fn message_id_local(hint_key: &[u8], nonce: &[u8; HINT_NONCE_LEN]) -> String {
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&hint_tag(hint_key, nonce));
    hex::encode(bytes)
}

/// Extracts (nonce, tag) from a message's Message-ID, if it has the Kith form.
fn parse_hint(message: &[u8]) -> Option<([u8; HINT_NONCE_LEN], [u8; HINT_TAG_LEN])> {
    let parsed = MessageParser::default().parse_headers(message)?;
    let id = parsed.message_id()?;
    let local = id.split('@').next()?;
    let bytes = hex::decode(local).ok()?;
    let (nonce, tag) = bytes.split_first_chunk::<HINT_NONCE_LEN>()?;
    let tag: [u8; HINT_TAG_LEN] = tag.try_into().ok()?;
    Some((*nonce, tag))
}

/// Whether the message's hint says it was sealed to `key`. A `false` means the key will
/// not open it; a `true` means it is worth trying (a false positive has probability
/// 2^-128).
pub fn hint_matches(message: &[u8], key: OpenKey<'_>) -> bool {
    let Some((nonce, tag)) = parse_hint(message) else {
        return false;
    };
    hint_tag(&key.hint_key(), &nonce).ct_eq(&tag).into()
}

/// The index of the first key in `keys` whose hint matches the message, if any.
pub fn find_key(message: &[u8], keys: &[OpenKey<'_>]) -> Option<usize> {
    let (nonce, tag) = parse_hint(message)?;
    keys.iter()
        .position(|key| bool::from(hint_tag(&key.hint_key(), &nonce).ct_eq(&tag)))
}
