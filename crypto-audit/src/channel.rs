//! The invite/link channel: an authenticated encrypted channel between two devices that
//! met through a QR code or an invite link, carried through the relays. See PROTOCOL.md §4.
//!
//! The *inviter* shows the QR code (an [`crate::invite::InvitePayload`] holding its
//! ephemeral X25519 public key and a one-time invite secret); the *joiner* scans it, makes
//! its own ephemeral key and sends its public key in its first message. Both then compute:
//!
//! ```text
//! dh         = X25519(own_secret, peer_public)           (all-zero output rejected)
//! transcript = SHA-256("kith channel v1 transcript" ‖ inviter_public[32] ‖ joiner_public[32])
//! prk        = HKDF-Extract(salt = transcript, ikm = dh ‖ invite_secret[16])
//! k_i2j      = HKDF-Expand(prk, "kith channel v1 inviter to joiner", 32)
//! k_j2i      = HKDF-Expand(prk, "kith channel v1 joiner to inviter", 32)
//! sas        = HKDF-Expand(prk, "kith channel v1 sas", 8), as u64 big-endian mod 10^6,
//!              shown as 6 digits "123 456"
//! ```
//! A sealed message is `counter u64 ‖ ChaCha20-Poly1305(k_dir, nonce = 0u32 ‖ counter,
//! aad = transcript, plaintext)`. Counters start at 0 in each direction and each must be
//! exactly the next one expected: a replayed, dropped-then-late or reordered message is
//! refused.
//!
//! The inviter's key is fixed in the QR code before the joiner picks its key, and the SAS
//! is derived from the secret DH output, so a man in the middle (even one who photographed
//! the QR code) cannot choose keys to make the two screens agree: one try in 10^6.
//!
//! The joiner's first envelope is sealed, before any DH, under
//! `first_message_key = HKDF(salt = "", ikm = invite_secret, info = "kith invite first
//! message v1", 32)`, so even the handshake never travels in clear.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::invite::InviteSecret;

/// Label hashed into the transcript.
pub const TRANSCRIPT_LABEL: &[u8] = b"kith channel v1 transcript";
/// HKDF info of the inviter-to-joiner key.
pub const INVITER_TO_JOINER_LABEL: &[u8] = b"kith channel v1 inviter to joiner";
/// HKDF info of the joiner-to-inviter key.
pub const JOINER_TO_INVITER_LABEL: &[u8] = b"kith channel v1 joiner to inviter";
/// HKDF info of the short authentication string.
pub const SAS_LABEL: &[u8] = b"kith channel v1 sas";
/// HKDF info of the joiner's first-message key.
pub const FIRST_MESSAGE_LABEL: &[u8] = b"kith invite first message v1";
const COUNTER_LEN: usize = 8;
const TAG_LEN: usize = 16;

/// What can go wrong on the channel.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer's public key gives an all-zero shared secret (a small-order point).
    #[error("the peer's channel key is invalid (non-contributory X25519 point)")]
    NonContributoryKey,
    /// A sealed message is shorter than its counter and tag.
    #[error("sealed message too short: {0} bytes")]
    TooShort(usize),
    /// The message's counter is not the next one expected (replay, loss or reordering).
    #[error("unexpected message counter {got}, expected {expected}")]
    UnexpectedCounter {
        /// The counter the next message must carry.
        expected: u64,
        /// The counter the message carried.
        got: u64,
    },
    /// Authentication failed: wrong key, wrong transcript or modified bytes.
    #[error("the message does not authenticate on this channel")]
    Unauthentic,
    /// This direction has sent 2^64 messages.
    #[error("the channel's message counter is exhausted")]
    CounterExhausted,
}

/// Which side of the channel this device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The device that showed the QR code or shared the invite link.
    Inviter,
    /// The device that scanned or opened it.
    Joiner,
}

/// One side's ephemeral X25519 key, before the peer's key is known.
pub struct ChannelKey {
    role: Role,
    secret: StaticSecret,
}

impl ChannelKey {
    /// A fresh ephemeral key.
    pub fn generate(role: Role, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self {
            role,
            secret: StaticSecret::random_from_rng(rng),
        }
    }

    /// A key from fixed secret bytes (known-answer tests, and the inviter restoring its
    /// pending invite from storage).
    pub fn from_secret_bytes(role: Role, secret: [u8; 32]) -> Self {
        Self {
            role,
            secret: StaticSecret::from(secret),
        }
    }

    /// The secret bytes, for storing a pending invite.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public key to send or put in the QR code.
    pub fn public_key(&self) -> [u8; 32] {
        PublicKey::from(&self.secret).to_bytes()
    }

    /// Completes the exchange with the peer's public key and the invite's secret.
    pub fn establish(
        &self,
        peer_public: &[u8; 32],
        invite_secret: &InviteSecret,
    ) -> Result<Channel, ChannelError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer_public));
        if !shared.was_contributory() {
            return Err(ChannelError::NonContributoryKey);
        }
        let own = self.public_key();
        let (inviter, joiner) = match self.role {
            Role::Inviter => (own, *peer_public),
            Role::Joiner => (*peer_public, own),
        };
        let transcript: [u8; 32] = Sha256::new()
            .chain_update(TRANSCRIPT_LABEL)
            .chain_update(inviter)
            .chain_update(joiner)
            .finalize()
            .into();
        let mut ikm = Zeroizing::new(Vec::with_capacity(48));
        ikm.extend_from_slice(shared.as_bytes());
        ikm.extend_from_slice(invite_secret.as_bytes());
        let hkdf = Hkdf::<Sha256>::new(Some(&transcript), &ikm);
        let i2j = expand32(&hkdf, INVITER_TO_JOINER_LABEL);
        let j2i = expand32(&hkdf, JOINER_TO_INVITER_LABEL);
        let mut sas = [0u8; 8];
        hkdf.expand(SAS_LABEL, &mut sas)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        let (send, receive) = match self.role {
            Role::Inviter => (i2j, j2i),
            Role::Joiner => (j2i, i2j),
        };
        Ok(Channel {
            transcript,
            sas: u64::from_be_bytes(sas) % 1_000_000,
            send: Direction::new(send),
            receive: Direction::new(receive),
        })
    }
}

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChannelKey({:?}, public {})",
            self.role,
            hex::encode(self.public_key())
        )
    }
}

/// The key that seals the joiner's first envelope, derived from the invite secret alone.
pub fn first_message_key(invite_secret: &InviteSecret) -> Zeroizing<[u8; 32]> {
    let hkdf = Hkdf::<Sha256>::new(None, invite_secret.as_bytes());
    expand32(&hkdf, FIRST_MESSAGE_LABEL)
}

fn expand32(hkdf: &Hkdf<Sha256>, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf.expand(info, &mut out[..])
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

struct Direction {
    key: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl Direction {
    fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key, counter: 0 }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&*self.key).into())
    }
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// An established channel: per-direction keys and counters, and the SAS.
pub struct Channel {
    transcript: [u8; 32],
    sas: u64,
    send: Direction,
    receive: Direction,
}

impl Channel {
    /// The short authentication string both screens show: 6 digits as `"123 456"`.
    pub fn short_authentication_string(&self) -> String {
        let digits = format!("{:06}", self.sas);
        format!("{} {}", &digits[..3], &digits[3..])
    }

    /// The transcript hash (public; binds both ephemeral keys and the roles).
    pub fn transcript_hash(&self) -> &[u8; 32] {
        &self.transcript
    }

    /// The (inviter-to-joiner, joiner-to-inviter) keys, for known-answer vectors only.
    pub(crate) fn direction_keys(&self, role: Role) -> (&[u8; 32], &[u8; 32]) {
        match role {
            Role::Inviter => (&self.send.key, &self.receive.key),
            Role::Joiner => (&self.receive.key, &self.send.key),
        }
    }

    /// Seals the next outgoing message.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let counter = self.send.counter;
        let next = counter
            .checked_add(1)
            .ok_or(ChannelError::CounterExhausted)?;
        let sealed = self
            .send
            .cipher()
            .encrypt(
                (&nonce(counter)).into(),
                Payload {
                    msg: plaintext,
                    aad: &self.transcript,
                },
            )
            .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        self.send.counter = next;
        let mut out = Vec::with_capacity(COUNTER_LEN + sealed.len());
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens the next incoming message; it must carry exactly the next counter.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ChannelError> {
        if sealed.len() < COUNTER_LEN + TAG_LEN {
            return Err(ChannelError::TooShort(sealed.len()));
        }
        let (counter, ciphertext) = sealed.split_at(COUNTER_LEN);
        let counter = u64::from_be_bytes(counter.try_into().expect("split at 8"));
        if counter != self.receive.counter {
            return Err(ChannelError::UnexpectedCounter {
                expected: self.receive.counter,
                got: counter,
            });
        }
        let plaintext = self
            .receive
            .cipher()
            .decrypt(
                (&nonce(counter)).into(),
                Payload {
                    msg: ciphertext,
                    aad: &self.transcript,
                },
            )
            .map_err(|_| ChannelError::Unauthentic)?;
        self.receive.counter = counter
            .checked_add(1)
            .ok_or(ChannelError::CounterExhausted)?;
        Ok(Zeroizing::new(plaintext))
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("transcript", &hex::encode(self.transcript))
            .field("sent", &self.send.counter)
            .field("received", &self.receive.counter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn pair() -> (Channel, Channel) {
        let secret = InviteSecret::generate(&mut OsRng);
        let inviter = ChannelKey::generate(Role::Inviter, &mut OsRng);
        let joiner = ChannelKey::generate(Role::Joiner, &mut OsRng);
        let a = inviter
            .establish(&joiner.public_key(), &secret)
            .expect("inviter side");
        let b = joiner
            .establish(&inviter.public_key(), &secret)
            .expect("joiner side");
        (a, b)
    }

    #[test]
    fn both_sides_agree_and_talk_both_ways() {
        let (mut a, mut b) = pair();
        assert_eq!(
            a.short_authentication_string(),
            b.short_authentication_string()
        );
        assert_eq!(a.transcript_hash(), b.transcript_hash());
        let m = a.seal(b"identity key and contacts").expect("seal");
        assert_eq!(&b.open(&m).expect("open")[..], b"identity key and contacts");
        let r = b.seal(b"key packages").expect("seal");
        assert_eq!(&a.open(&r).expect("open")[..], b"key packages");
        // A message reflected back to its sender does not open (different direction key).
        let m2 = a.seal(b"x").expect("seal");
        assert!(a.open(&m2).is_err());
    }

    #[test]
    fn replay_and_reordering_are_refused() {
        let (mut a, mut b) = pair();
        let m0 = a.seal(b"0").expect("seal");
        let m1 = a.seal(b"1").expect("seal");
        assert_eq!(
            b.open(&m1),
            Err(ChannelError::UnexpectedCounter {
                expected: 0,
                got: 1
            })
        );
        b.open(&m0).expect("in order");
        assert_eq!(
            b.open(&m0),
            Err(ChannelError::UnexpectedCounter {
                expected: 1,
                got: 0
            })
        );
        b.open(&m1).expect("in order");
    }

    #[test]
    fn different_invite_secret_gives_different_sas_and_keys() {
        let inviter = ChannelKey::generate(Role::Inviter, &mut OsRng);
        let joiner = ChannelKey::generate(Role::Joiner, &mut OsRng);
        let mut a = inviter
            .establish(&joiner.public_key(), &InviteSecret::generate(&mut OsRng))
            .expect("a");
        let mut b = joiner
            .establish(&inviter.public_key(), &InviteSecret::generate(&mut OsRng))
            .expect("b");
        assert_eq!(
            b.open(&a.seal(b"x").expect("seal")),
            Err(ChannelError::Unauthentic)
        );
        assert_eq!(a.transcript_hash(), b.transcript_hash());
    }

    #[test]
    fn small_order_peer_key_is_refused() {
        let secret = InviteSecret::generate(&mut OsRng);
        let key = ChannelKey::generate(Role::Joiner, &mut OsRng);
        assert_eq!(
            key.establish(&[0u8; 32], &secret).err(),
            Some(ChannelError::NonContributoryKey)
        );
    }
}
