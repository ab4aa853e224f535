//! Sealing: a frame in, an RFC 5322 PGP/MIME envelope out (PROTOCOL.md §5).

use std::io::Write;

use rand_core::{CryptoRng, RngCore};
use sequoia_openpgp::armor;
use sequoia_openpgp::crypto::{Password, SessionKey};
use sequoia_openpgp::packet::skesk::SKESK6;
use sequoia_openpgp::packet::Packet;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Recipient};
use sequoia_openpgp::serialize::Serialize;
use sequoia_openpgp::types::{AEADAlgorithm, Features, HashAlgorithm, SymmetricAlgorithm};
use sequoia_openpgp::{crypto::S2K, PacketPile};

use super::hint::{message_id_local, HINT_NONCE_LEN};
use super::keys::SealKey;
use super::mime::{render, Headers};
use super::EnvelopeError;
use crate::frame::Frame;

/// The payload cipher: AES-256.
pub(crate) const SYMMETRIC_ALGO: SymmetricAlgorithm = SymmetricAlgorithm::AES256;
/// The AEAD mode of SEIPD v2 and SKESK v6: OCB (RFC 9580's mandatory mode).
pub(crate) const AEAD_ALGO: AEADAlgorithm = AEADAlgorithm::OCB;

/// The Iterated+Salted S2K count: 1024 bytes hashed, the smallest count OpenPGP encodes.
pub(crate) const S2K_HASH_BYTES: u32 = 1024;

/// Seals `frame` into an envelope from `from` (the sender device's address) to `key`.
///
/// `now_unix` is the current time in seconds; the Date header shows it rounded down to the
/// hour. `rng` draws the Message-ID nonce; sequoia draws session keys, salts and IVs from
/// the operating system.
pub fn seal(
    frame: &Frame,
    key: SealKey<'_>,
    from: &str,
    now_unix: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, EnvelopeError> {
    let domain = sender_domain(from)?;
    let mut nonce = [0u8; HINT_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let message_id = format!("{}@{domain}", message_id_local(&key.hint_key(), &nonce));
    let payload = openpgp_message(&frame.encode()?, key)?;
    let armored = armor_message(&payload)?;
    let headers = Headers {
        from,
        message_id: &message_id,
        now_unix,
    };
    Ok(render(&headers, &armored))
}

/// The domain of a plain `local@domain` address; anything else is refused, so that no
/// header injection or display name can slip into the envelope.
fn sender_domain(from: &str) -> Result<&str, EnvelopeError> {
    let is_plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"@".contains(&b))
    };
    match from.split_once('@') {
        Some((local, domain)) if is_plain(local) && is_plain(domain) => Ok(domain),
        _ => Err(EnvelopeError::BadSenderAddress),
    }
}

/// Builds the binary OpenPGP message: ESK packet, then a SEIPD v2 (AES-256, OCB) holding
/// one literal data packet with the frame, re-serialized with definite lengths.
pub(crate) fn openpgp_message(frame: &[u8], key: SealKey<'_>) -> Result<Vec<u8>, EnvelopeError> {
    let recipient_key = match key {
        SealKey::Device(pk) => Some(pk.openpgp_key()?),
        SealKey::Symmetric(_) => None,
    };
    let mut streamed = Vec::new();
    {
        let message = Message::new(&mut streamed);
        let message = match (key, &recipient_key) {
            (SealKey::Symmetric(k), _) => {
                let session_key = SessionKey::new(32).map_err(EnvelopeError::openpgp)?;
                let mut message = message;
                let password = Password::from(k.skesk_password().to_vec());
                write_skesk(&mut message, &session_key, &password)?;
                Encryptor::with_session_key(message, SYMMETRIC_ALGO, session_key)
                    .map_err(EnvelopeError::openpgp)?
                    .aead_algo(AEAD_ALGO)
                    .build()
            }
            (SealKey::Device(_), Some(recipient_key)) => {
                let features = Features::empty().set_seipdv2();
                // No key handle: the PKESK names no recipient (anonymous recipient).
                let recipient = Recipient::new(features, None, recipient_key);
                Encryptor::for_recipients(message, [recipient])
                    .symmetric_algo(SYMMETRIC_ALGO)
                    .aead_algo(AEAD_ALGO)
                    .build()
            }
            (SealKey::Device(_), None) => unreachable!("the device key was converted above"),
        }
        .map_err(EnvelopeError::openpgp)?;
        let mut literal = LiteralWriter::new(message)
            .build()
            .map_err(EnvelopeError::openpgp)?;
        literal.write_all(frame).map_err(EnvelopeError::openpgp)?;
        literal.finalize().map_err(EnvelopeError::openpgp)?;
    }
    with_definite_lengths(&streamed)
}

/// Writes a SKESK v6 packet: Iterated+Salted S2K (SHA-256, 8-byte random salt, the minimum
/// count of 1024 bytes) over the derived 32-byte password. The password is a uniformly
/// random 256-bit key, so no costly S2K is needed; RFC 9580 forbids generating Simple S2K
/// and sequoia deprecates Salted S2K.
fn write_skesk(
    message: &mut Message<'_>,
    session_key: &SessionKey,
    password: &Password,
) -> Result<(), EnvelopeError> {
    let mut salt = [0u8; 8];
    sequoia_openpgp::crypto::random(&mut salt).map_err(EnvelopeError::openpgp)?;
    let s2k = S2K::Iterated {
        hash: HashAlgorithm::SHA256,
        salt,
        hash_bytes: S2K_HASH_BYTES,
    };
    let skesk = SKESK6::with_password(
        SYMMETRIC_ALGO,
        SYMMETRIC_ALGO,
        AEAD_ALGO,
        s2k,
        session_key,
        password,
    )
    .map_err(EnvelopeError::openpgp)?;
    Packet::SKESK(skesk.into())
        .serialize(message)
        .map_err(EnvelopeError::openpgp)
}

/// sequoia streams the SEIPD body with partial body lengths; older filtermail versions
/// reject those, so every top-level packet is re-serialized with a definite length.
pub(crate) fn with_definite_lengths(streamed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let pile = PacketPile::from_bytes(streamed).map_err(EnvelopeError::openpgp)?;
    let mut out = Vec::with_capacity(streamed.len());
    for packet in pile.children() {
        packet.serialize(&mut out).map_err(EnvelopeError::openpgp)?;
    }
    Ok(out)
}

/// ASCII-armors a binary OpenPGP message (`PGP MESSAGE`, no armor headers).
pub(crate) fn armor_message(payload: &[u8]) -> Result<String, EnvelopeError> {
    let mut writer =
        armor::Writer::new(Vec::new(), armor::Kind::Message).map_err(EnvelopeError::openpgp)?;
    writer.write_all(payload).map_err(EnvelopeError::openpgp)?;
    let bytes = writer.finalize().map_err(EnvelopeError::openpgp)?;
    String::from_utf8(bytes).map_err(EnvelopeError::openpgp)
}
