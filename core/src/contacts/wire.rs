//! The handshake messages' wire form (the payload of a `FrameKind::Handshake` frame).
//!
//! ```text
//! message   = version u8 (= 1) ‖ type u8 ‖ body
//! type 1    join request  (joiner → inviter, envelope sealed under the first-message key)
//!           joiner_channel_key [32] ‖ channel-sealed(card)
//! type 2    reply         (inviter → joiner, envelope sealed to the joiner's envelope key)
//!           joiner_channel_key [32] ‖ channel-sealed(status u8 ‖ card if status = 0)
//!           status: 0 accepted, 1 invite already used, 2 invite expired
//! type 3    key packages  (device → contact device, sealed to its envelope key)
//!           card
//! card      = u16 certificate length ‖ device certificate (PROTOCOL.md §3; it names the
//!             identity key and the delivery address) ‖ envelope public key [32] ‖
//!             flags u8 (bit 0: the last KeyPackage is the sender's last-resort one) ‖
//!             count u8 (1..=8) ‖ count × (u32 length (1..=65536) ‖ TLS-serialized KeyPackage)
//! ```
//! All integers are big-endian. Unknown versions, types, statuses or flags, short inputs
//! and trailing bytes are refused. "channel-sealed" is a `kith_crypto::channel` message
//! (counter ‖ ciphertext ‖ tag), always the first of its direction (counter 0).
use kith_crypto::certificate::DeviceCertificate;
use kith_crypto::envelope::DevicePublicKey;
use thiserror::Error;

/// The only handshake message version this code writes and reads.
pub const HANDSHAKE_VERSION: u8 = 1;
/// The most KeyPackages one card may carry.
pub const MAX_CARD_KEY_PACKAGES: usize = 8;
/// The longest KeyPackage a card may carry (64 KiB; real ones are well under 1 KiB).
pub const MAX_CARD_KEY_PACKAGE_LEN: usize = 64 * 1024;

const TYPE_JOIN_REQUEST: u8 = 1;
const TYPE_REPLY: u8 = 2;
const TYPE_KEY_PACKAGES: u8 = 3;
const FLAG_LAST_RESORT: u8 = 1;

/// Why bytes are not a handshake message.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes end inside the field named.
    #[error("handshake message truncated in {0}")]
    Truncated(&'static str),
    /// The version byte is not one this code reads.
    #[error("handshake message version {0} is not supported")]
    UnsupportedVersion(u8),
    /// The type byte is not a known message type.
    #[error("unknown handshake message type {0}")]
    UnknownType(u8),
    /// The reply status is not a known one.
    #[error("unknown handshake reply status {0}")]
    UnknownStatus(u8),
    /// The card's flags have unknown bits set.
    #[error("unknown card flags {0:#04x}")]
    UnknownFlags(u8),
    /// The device certificate does not decode.
    #[error("card certificate: {0}")]
    Certificate(#[from] kith_crypto::certificate::CertificateError),
    /// A card carries no KeyPackage or more than [`MAX_CARD_KEY_PACKAGES`].
    #[error("card carries {0} KeyPackages (1..={MAX_CARD_KEY_PACKAGES} allowed)")]
    KeyPackageCount(usize),
    /// A KeyPackage is empty or longer than [`MAX_CARD_KEY_PACKAGE_LEN`].
    #[error("card KeyPackage length {0} is out of range")]
    KeyPackageLength(usize),
    /// Bytes follow the message.
    #[error("{0} bytes follow the handshake message")]
    TrailingBytes(usize),
}

/// What a device tells the other side about itself: its certificate (identity key,
/// device id and key, delivery address), its envelope key and some KeyPackages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The device certificate (not yet verified when decoded).
    pub certificate: DeviceCertificate,
    /// The device's envelope public key (Welcomes and device messages are sealed to it).
    pub envelope_key: DevicePublicKey,
    /// TLS-serialized KeyPackages of the device.
    pub key_packages: Vec<Vec<u8>>,
    /// True if the last of `key_packages` is the device's last-resort package.
    pub has_last_resort: bool,
}

/// Whether the inviter took the join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// Accepted: the inviter's card (contact invites) or no card (group invites; the
    /// Welcome follows separately).
    Accepted(Option<Box<Card>>),
    /// Refused, and why.
    Refused(Refusal),
}

/// Why an inviter refused a join request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Someone already joined with this one-time invite.
    AlreadyUsed,
    /// The invite had expired when the request arrived.
    Expired,
}

/// A decoded handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeMessage {
    /// The joiner's first message: its channel key and its card, sealed on the channel.
    JoinRequest {
        /// The joiner's ephemeral X25519 public key.
        joiner_key: [u8; 32],
        /// The channel message holding the encoded card.
        sealed: Vec<u8>,
    },
    /// The inviter's answer, sealed on the channel.
    Reply {
        /// The joiner's channel key, naming the join this answers.
        joiner_key: [u8; 32],
        /// The channel message holding the encoded [`ReplyBody`].
        sealed: Vec<u8>,
    },
    /// Fresh KeyPackages for a contact's stock.
    KeyPackages(Card),
}

impl HandshakeMessage {
    /// The wire form.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = vec![HANDSHAKE_VERSION];
        match self {
            Self::JoinRequest { joiner_key, sealed } | Self::Reply { joiner_key, sealed } => {
                let kind = match self {
                    Self::JoinRequest { .. } => TYPE_JOIN_REQUEST,
                    _ => TYPE_REPLY,
                };
                out.push(kind);
                out.extend_from_slice(joiner_key);
                out.extend_from_slice(sealed);
            }
            Self::KeyPackages(card) => {
                out.push(TYPE_KEY_PACKAGES);
                card.encode_into(&mut out)?;
            }
        }
        Ok(out)
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(bytes);
        let [version] = r.take::<1>("version")?;
        if version != HANDSHAKE_VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let [kind] = r.take::<1>("type")?;
        match kind {
            TYPE_JOIN_REQUEST | TYPE_REPLY => {
                let joiner_key = r.take::<32>("joiner channel key")?;
                let sealed = r.0.to_vec();
                if sealed.is_empty() {
                    return Err(WireError::Truncated("channel message"));
                }
                Ok(if kind == TYPE_JOIN_REQUEST {
                    Self::JoinRequest { joiner_key, sealed }
                } else {
                    Self::Reply { joiner_key, sealed }
                })
            }
            TYPE_KEY_PACKAGES => {
                let card = Card::read(&mut r)?;
                r.finish()?;
                Ok(Self::KeyPackages(card))
            }
            other => Err(WireError::UnknownType(other)),
        }
    }
}

impl Card {
    /// The card alone (the plaintext of a join request's channel message).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Parses a card that must fill `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(bytes);
        let card = Self::read(&mut r)?;
        r.finish()?;
        Ok(card)
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let count = self.key_packages.len();
        if count == 0 || count > MAX_CARD_KEY_PACKAGES {
            return Err(WireError::KeyPackageCount(count));
        }
        let certificate = self.certificate.encode();
        // A certificate is at most 91 + 254 + 64 bytes.
        out.extend_from_slice(&(certificate.len() as u16).to_be_bytes());
        out.extend_from_slice(&certificate);
        out.extend_from_slice(&self.envelope_key.to_bytes());
        out.push(if self.has_last_resort {
            FLAG_LAST_RESORT
        } else {
            0
        });
        out.push(count as u8);
        for package in &self.key_packages {
            if package.is_empty() || package.len() > MAX_CARD_KEY_PACKAGE_LEN {
                return Err(WireError::KeyPackageLength(package.len()));
            }
            out.extend_from_slice(&(package.len() as u32).to_be_bytes());
            out.extend_from_slice(package);
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let cert_len = u16::from_be_bytes(r.take("certificate length")?) as usize;
        let certificate = DeviceCertificate::decode(r.slice(cert_len, "certificate")?)?;
        let envelope_key = DevicePublicKey::from_bytes(r.take("envelope key")?);
        let [flags] = r.take::<1>("flags")?;
        if flags & !FLAG_LAST_RESORT != 0 {
            return Err(WireError::UnknownFlags(flags));
        }
        let [count] = r.take::<1>("KeyPackage count")?;
        let count = count as usize;
        if count == 0 || count > MAX_CARD_KEY_PACKAGES {
            return Err(WireError::KeyPackageCount(count));
        }
        let mut key_packages = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u32::from_be_bytes(r.take("KeyPackage length")?) as usize;
            if len == 0 || len > MAX_CARD_KEY_PACKAGE_LEN {
                return Err(WireError::KeyPackageLength(len));
            }
            key_packages.push(r.slice(len, "KeyPackage")?.to_vec());
        }
        Ok(Self {
            certificate,
            envelope_key,
            key_packages,
            has_last_resort: flags & FLAG_LAST_RESORT != 0,
        })
    }
}

impl ReplyBody {
    /// The plaintext of a reply's channel message.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        Ok(match self {
            Self::Accepted(None) => vec![0],
            Self::Accepted(Some(card)) => {
                let mut out = vec![0];
                card.encode_into(&mut out)?;
                out
            }
            Self::Refused(Refusal::AlreadyUsed) => vec![1],
            Self::Refused(Refusal::Expired) => vec![2],
        })
    }

    /// Parses a reply's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(bytes);
        let [status] = r.take::<1>("status")?;
        let body = match status {
            0 if r.0.is_empty() => Self::Accepted(None),
            0 => Self::Accepted(Some(Box::new(Card::read(&mut r)?))),
            1 => Self::Refused(Refusal::AlreadyUsed),
            2 => Self::Refused(Refusal::Expired),
            other => return Err(WireError::UnknownStatus(other)),
        };
        r.finish()?;
        Ok(body)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn slice(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < len {
            return Err(WireError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let bytes = self.slice(N, what)?;
        Ok(bytes.try_into().expect("slice has exactly N bytes"))
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_crypto::certificate::DeviceId;
    use kith_crypto::envelope::DeviceKeypair;
    use kith_crypto::identity::IdentityKey;
    use proptest::prelude::*;
    use rand::rngs::OsRng;

    fn card(key_packages: Vec<Vec<u8>>) -> Card {
        let identity = IdentityKey::generate(&mut OsRng);
        let device_key = IdentityKey::generate(&mut OsRng).public_key().to_bytes();
        let certificate = DeviceCertificate::issue(
            &identity,
            DeviceId::generate(&mut OsRng),
            device_key,
            "abc@relay.test",
            1,
        )
        .unwrap();
        Card {
            certificate,
            envelope_key: DeviceKeypair::generate(&mut OsRng).public(),
            key_packages,
            has_last_resort: true,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let card = card(vec![vec![1; 10], vec![2; 300]]);
        for message in [
            HandshakeMessage::JoinRequest {
                joiner_key: [4; 32],
                sealed: vec![9; 50],
            },
            HandshakeMessage::Reply {
                joiner_key: [5; 32],
                sealed: vec![8; 20],
            },
            HandshakeMessage::KeyPackages(card.clone()),
        ] {
            let bytes = message.encode().unwrap();
            assert_eq!(HandshakeMessage::decode(&bytes).unwrap(), message);
        }
        for body in [
            ReplyBody::Accepted(None),
            ReplyBody::Accepted(Some(Box::new(card.clone()))),
            ReplyBody::Refused(Refusal::AlreadyUsed),
            ReplyBody::Refused(Refusal::Expired),
        ] {
            assert_eq!(ReplyBody::decode(&body.encode().unwrap()).unwrap(), body);
        }
        assert_eq!(Card::decode(&card.encode().unwrap()).unwrap(), card);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let bytes = HandshakeMessage::KeyPackages(card(vec![vec![1; 10]]))
            .encode()
            .unwrap();
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            HandshakeMessage::decode(&longer),
            Err(WireError::TrailingBytes(1))
        );
        assert_eq!(
            HandshakeMessage::decode(&bytes[..bytes.len() - 1]),
            Err(WireError::Truncated("KeyPackage"))
        );
        let mut version = bytes.clone();
        version[0] = 2;
        assert_eq!(
            HandshakeMessage::decode(&version),
            Err(WireError::UnsupportedVersion(2))
        );
        assert_eq!(
            HandshakeMessage::decode(&[1, 7]),
            Err(WireError::UnknownType(7))
        );
        assert_eq!(
            HandshakeMessage::decode(&[1, 1, 0]),
            Err(WireError::Truncated("joiner channel key"))
        );
        assert_eq!(ReplyBody::decode(&[3]), Err(WireError::UnknownStatus(3)));
        assert_eq!(ReplyBody::decode(&[1, 0]), Err(WireError::TrailingBytes(1)));
        assert_eq!(card(vec![]).encode(), Err(WireError::KeyPackageCount(0)));
        assert_eq!(
            card(vec![vec![]]).encode(),
            Err(WireError::KeyPackageLength(0))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(message) = HandshakeMessage::decode(&bytes) {
                // Whatever decodes encodes back to the same bytes.
                prop_assert_eq!(message.encode().unwrap(), bytes.clone());
            }
            let _ = ReplyBody::decode(&bytes);
        }
    }
}
