//! Invite payloads: what a QR code or invite link carries. See PROTOCOL.md §4.
//!
//! Wire form (big-endian):
//!
//! ```text
//! version             u8    = 1
//! kind                u8    1 = contact invite, 2 = device link, 3 = group invite
//! fingerprint         [32]  only for kinds 1 and 3: the inviter's identity fingerprint
//! channel_public_key  [32]  the inviter's ephemeral X25519 key for the channel
//! delivery_address    u16 length ‖ bytes (the certificate's address rule)
//! invite_secret       [16]  one-time secret
//! expires_at          u64   seconds since the Unix epoch
//! ```
//! Any other version or kind, a short input or a trailing byte is refused.
//!
//! Text forms: `kith:i1/<base64url, unpadded>` (QR codes and `kith:` links) and the https
//! fallback `https://<host>/i1#<same base64url>`; the payload sits in the fragment, which
//! browsers never send to the web server.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::certificate::check_address;
use crate::fingerprint::Fingerprint;

/// The only payload version this code writes and reads.
pub const INVITE_VERSION: u8 = 1;
/// The prefix of the `kith:` form.
pub const INVITE_URI_PREFIX: &str = "kith:i1/";
/// The path and fragment marker of the https fallback form.
pub const INVITE_HTTPS_PATH: &str = "/i1#";
/// Length of an invite secret.
pub const INVITE_SECRET_LEN: usize = 16;
const KIND_CONTACT: u8 = 1;
const KIND_DEVICE_LINK: u8 = 2;
const KIND_GROUP: u8 = 3;

/// What can go wrong reading an invite.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum InviteError {
    /// The payload ended before the structure did.
    #[error("invite truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// How many bytes the field needed.
        needed: usize,
    },
    /// The version byte is not one this code understands (perhaps a newer Kith made it).
    #[error("unsupported invite version {0}")]
    UnsupportedVersion(u8),
    /// The kind byte is none of contact invite, device link and group invite.
    #[error("unknown invite kind {0}")]
    UnknownKind(u8),
    /// Bytes follow the payload.
    #[error("{0} unexpected bytes after the invite")]
    TrailingBytes(usize),
    /// The delivery address breaks the address rule.
    #[error("invalid delivery address in invite")]
    InvalidAddress,
    /// The text is neither a `kith:i1/` link nor an `https://host/i1#` link.
    #[error("not a Kith invite (expected kith:i1/… or https://host/i1#…)")]
    NotAnInvite,
    /// The link's payload is not valid unpadded base64url.
    #[error("the invite link is damaged (not valid base64url)")]
    MalformedEncoding,
}

/// A one-time invite secret (16 random bytes). Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct InviteSecret([u8; INVITE_SECRET_LEN]);

impl InviteSecret {
    /// A fresh random secret.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut secret = [0u8; INVITE_SECRET_LEN];
        rng.fill_bytes(&mut secret);
        Self(secret)
    }

    /// A secret from its bytes (for storage and known-answer tests).
    pub fn from_bytes(bytes: [u8; INVITE_SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; INVITE_SECRET_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteSecret(..)")
    }
}

/// What the invite is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteKind {
    /// Make a contact with the user whose identity has this fingerprint.
    Contact {
        /// The inviter's identity fingerprint.
        fingerprint: Fingerprint,
    },
    /// Link a new device (the inviter) to the scanning device's account.
    DeviceLink,
    /// Join a group: the inviting device (a member, whose identity has this fingerprint)
    /// adds whoever answers. The link names no group: the joiner learns it from the
    /// Welcome, and someone who sees the link learns nothing about the group.
    Group {
        /// The inviting member's identity fingerprint.
        fingerprint: Fingerprint,
    },
}

/// The content of a QR code or invite link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitePayload {
    /// Contact invite or device link.
    pub kind: InviteKind,
    /// The inviter's ephemeral X25519 public key for [`crate::channel`].
    pub channel_public_key: [u8; 32],
    /// Where the joiner sends its first message.
    pub delivery_address: String,
    /// The one-time secret.
    pub invite_secret: InviteSecret,
    /// After this time (Unix seconds) the inviter ignores answers.
    pub expires_at: u64,
}

impl InvitePayload {
    /// The binary wire form. Fails only if the delivery address breaks the address rule.
    pub fn encode(&self) -> Result<Vec<u8>, InviteError> {
        check_address(&self.delivery_address).map_err(|_| InviteError::InvalidAddress)?;
        let address = self.delivery_address.as_bytes();
        let mut out = Vec::with_capacity(2 + 32 + 32 + 2 + address.len() + 16 + 8);
        out.push(INVITE_VERSION);
        match &self.kind {
            InviteKind::Contact { fingerprint } => {
                out.push(KIND_CONTACT);
                out.extend_from_slice(fingerprint.as_bytes());
            }
            InviteKind::DeviceLink => out.push(KIND_DEVICE_LINK),
            InviteKind::Group { fingerprint } => {
                out.push(KIND_GROUP);
                out.extend_from_slice(fingerprint.as_bytes());
            }
        }
        out.extend_from_slice(&self.channel_public_key);
        // check_address bounds the length to 254.
        out.extend_from_slice(&(address.len() as u16).to_be_bytes());
        out.extend_from_slice(address);
        out.extend_from_slice(self.invite_secret.as_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        Ok(out)
    }

    /// Parses the binary wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, InviteError> {
        let mut r = Reader { bytes, offset: 0 };
        let [version] = r.array()?;
        if version != INVITE_VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        let kind = match r.array::<1>()?[0] {
            KIND_CONTACT => InviteKind::Contact {
                fingerprint: Fingerprint::from_bytes(r.array()?),
            },
            KIND_DEVICE_LINK => InviteKind::DeviceLink,
            KIND_GROUP => InviteKind::Group {
                fingerprint: Fingerprint::from_bytes(r.array()?),
            },
            other => return Err(InviteError::UnknownKind(other)),
        };
        let channel_public_key = r.array()?;
        let address_len = u16::from_be_bytes(r.array()?) as usize;
        let address =
            std::str::from_utf8(r.take(address_len)?).map_err(|_| InviteError::InvalidAddress)?;
        check_address(address).map_err(|_| InviteError::InvalidAddress)?;
        let invite_secret = InviteSecret(r.array()?);
        let expires_at = u64::from_be_bytes(r.array()?);
        if r.offset != bytes.len() {
            return Err(InviteError::TrailingBytes(bytes.len() - r.offset));
        }
        Ok(Self {
            kind,
            channel_public_key,
            delivery_address: address.to_owned(),
            invite_secret,
            expires_at,
        })
    }

    /// The `kith:i1/…` form for QR codes and links.
    pub fn to_uri(&self) -> Result<String, InviteError> {
        Ok(format!(
            "{INVITE_URI_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.encode()?)
        ))
    }

    /// The https fallback form, `https://<host>/i1#…`, for people without Kith installed.
    pub fn to_https_url(&self, host: &str) -> Result<String, InviteError> {
        Ok(format!(
            "https://{host}{INVITE_HTTPS_PATH}{}",
            URL_SAFE_NO_PAD.encode(self.encode()?)
        ))
    }

    /// Parses either text form (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        let encoded = if let Some(rest) = text.strip_prefix(INVITE_URI_PREFIX) {
            rest
        } else if let Some(rest) = text.strip_prefix("https://") {
            let (host, payload) = rest
                .split_once(INVITE_HTTPS_PATH)
                .ok_or(InviteError::NotAnInvite)?;
            if host.is_empty() || host.contains(['/', '#', '?', '@']) {
                return Err(InviteError::NotAnInvite);
            }
            payload
        } else {
            return Err(InviteError::NotAnInvite);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| InviteError::MalformedEncoding)?;
        Self::decode(&bytes)
    }

    /// Whether the invite has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        now > self.expires_at
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InviteError> {
        let rest = &self.bytes[self.offset..];
        if rest.len() < n {
            return Err(InviteError::Truncated {
                offset: self.offset,
                needed: n,
            });
        }
        self.offset += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn sample(kind: InviteKind) -> InvitePayload {
        InvitePayload {
            kind,
            channel_public_key: [7; 32],
            delivery_address: "x1y2@relay.example".into(),
            invite_secret: InviteSecret::generate(&mut OsRng),
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn both_kinds_and_both_text_forms_round_trip() {
        for kind in [
            InviteKind::Contact {
                fingerprint: Fingerprint::from_bytes([9; 32]),
            },
            InviteKind::DeviceLink,
            InviteKind::Group {
                fingerprint: Fingerprint::from_bytes([3; 32]),
            },
        ] {
            let invite = sample(kind);
            assert_eq!(
                InvitePayload::decode(&invite.encode().expect("encode")),
                Ok(invite.clone())
            );
            assert_eq!(
                InvitePayload::parse(&invite.to_uri().expect("uri")),
                Ok(invite.clone())
            );
            let url = invite.to_https_url("relay.example").expect("url");
            assert!(url.starts_with("https://relay.example/i1#"));
            assert_eq!(InvitePayload::parse(&url), Ok(invite.clone()));
        }
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let invite = sample(InviteKind::DeviceLink);
        let bytes = invite.encode().expect("encode");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            InvitePayload::decode(&longer),
            Err(InviteError::TrailingBytes(1))
        );
        assert!(matches!(
            InvitePayload::decode(&bytes[..bytes.len() - 1]),
            Err(InviteError::Truncated { .. })
        ));
        let mut kind = bytes.clone();
        kind[1] = 9;
        assert_eq!(
            InvitePayload::decode(&kind),
            Err(InviteError::UnknownKind(9))
        );
        let mut version = bytes;
        version[0] = 2;
        assert_eq!(
            InvitePayload::decode(&version),
            Err(InviteError::UnsupportedVersion(2))
        );
        assert_eq!(
            InvitePayload::parse("mailto:a@b"),
            Err(InviteError::NotAnInvite)
        );
        assert_eq!(
            InvitePayload::parse("https://host/other#x"),
            Err(InviteError::NotAnInvite)
        );
        assert_eq!(
            InvitePayload::parse("kith:i1/***"),
            Err(InviteError::MalformedEncoding)
        );
        assert!(!format!("{invite:?}").contains(&hex::encode(invite.invite_secret.as_bytes())));
    }

    #[test]
    fn group_invites_have_kind_3_and_the_contact_layout() {
        let fingerprint = Fingerprint::from_bytes([5; 32]);
        let group = sample(InviteKind::Group { fingerprint })
            .encode()
            .expect("encode");
        assert_eq!(group[1], 3);
        assert_eq!(&group[2..34], &[5; 32]);
        // The same bytes under kind 1 are a contact invite with the same fields.
        let mut contact = group.clone();
        contact[1] = 1;
        let decoded = InvitePayload::decode(&contact).expect("contact");
        assert_eq!(decoded.kind, InviteKind::Contact { fingerprint });
        // Cut inside the fingerprint: truncated, not misread as another kind.
        assert!(matches!(
            InvitePayload::decode(&group[..20]),
            Err(InviteError::Truncated {
                offset: 2,
                needed: 32
            })
        ));
    }

    #[test]
    fn expiry() {
        let invite = sample(InviteKind::DeviceLink);
        assert!(!invite.is_expired(1_800_000_000));
        assert!(invite.is_expired(1_800_000_001));
    }
}
