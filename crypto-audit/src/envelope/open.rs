//! Opening: an envelope and a key in, the frame out (PROTOCOL.md §5).

use std::cell::Cell;
use std::io::Read;

use sequoia_openpgp::crypto::{Password, SessionKey};
use sequoia_openpgp::packet::{PKESK, SKESK};
use sequoia_openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::policy::StandardPolicy;
use sequoia_openpgp::types::SymmetricAlgorithm;
use sequoia_openpgp::{Cert, KeyHandle};
use zeroize::Zeroizing;

use super::check::{check_packets, dearmor, pgp_part};
use super::keys::{DeviceKeypair, OpenKey};
use super::EnvelopeError;
use crate::frame::Frame;

/// Opens an envelope with `key`: runs [`check_envelope`](super::check_envelope)'s checks
/// first, then decrypts (SEIPD v2 only, no signatures, no compression) and decodes the
/// frame.
pub fn open(message: &[u8], key: OpenKey<'_>) -> Result<Frame, EnvelopeError> {
    let payload = dearmor(&pgp_part(message)?)?;
    check_packets(&payload)?;
    let unlock = match key {
        OpenKey::Symmetric(k) => Unlock::Password(Password::from(k.skesk_password().to_vec())),
        OpenKey::Device(pair) => Unlock::Device(pair),
    };
    let plaintext = decrypt(&payload, &unlock)?;
    Ok(Frame::decode(&plaintext)?)
}

/// What opens a message: a SKESK v6 password, or a device key for a PKESK v6.
pub(crate) enum Unlock<'a> {
    /// The SKESK password (derived key bytes, or a recovery code).
    Password(Password),
    /// A device's envelope key pair.
    Device(&'a DeviceKeypair),
}

/// Decrypts a checked binary OpenPGP message: exactly one SEIPD v2 layer, nothing signed or
/// compressed. A failure before a session key is found is [`EnvelopeError::WrongKey`].
pub(crate) fn decrypt(
    payload: &[u8],
    unlock: &Unlock<'_>,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let policy = StandardPolicy::new();
    let found_session_key = Cell::new(false);
    let helper = Helper {
        unlock,
        found_session_key: &found_session_key,
    };
    let failed = |e: &dyn std::fmt::Display, found: bool| {
        if found {
            EnvelopeError::DecryptionFailed {
                reason: e.to_string(),
            }
        } else {
            EnvelopeError::WrongKey
        }
    };
    let builder = DecryptorBuilder::from_bytes(payload).map_err(EnvelopeError::openpgp)?;
    let mut decryptor = match builder.with_policy(&policy, None, helper) {
        Ok(d) => d,
        Err(e) => return Err(failed(&e, found_session_key.get())),
    };
    let mut plaintext = Zeroizing::new(Vec::new());
    let read = decryptor.read_to_end(&mut plaintext);
    let found = found_session_key.get();
    match read {
        Ok(_) if decryptor.message_processed() => Ok(plaintext),
        Ok(_) => Err(EnvelopeError::DecryptionFailed {
            reason: "message not fully processed".to_owned(),
        }),
        Err(e) => Err(failed(&e, found)),
    }
}

struct Helper<'a> {
    unlock: &'a Unlock<'a>,
    found_session_key: &'a Cell<bool>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> sequoia_openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }

    fn check(&mut self, structure: MessageStructure) -> sequoia_openpgp::Result<()> {
        let mut layers = structure.into_iter();
        match (layers.next(), layers.next()) {
            (
                Some(MessageLayer::Encryption {
                    aead_algo: Some(_), ..
                }),
                None,
            ) => Ok(()),
            _ => Err(policy_error("expected one SEIPD v2 layer and nothing else").into()),
        }
    }
}

fn policy_error(msg: &str) -> sequoia_openpgp::Error {
    sequoia_openpgp::Error::InvalidOperation(msg.to_owned())
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> sequoia_openpgp::Result<Option<Cert>> {
        match self.unlock {
            Unlock::Password(password) => {
                for skesk in skesks.iter().filter(|s| matches!(s, SKESK::V6(_))) {
                    if let Ok((algo, sk)) = skesk.decrypt(password) {
                        // SKESK v6 is AEAD-sealed: decrypting it proves the key is right.
                        self.found_session_key.set(true);
                        if decrypt(algo, &sk) {
                            return Ok(None);
                        }
                    }
                }
            }
            Unlock::Device(pair) => {
                let mut keypair = pair.openpgp_key()?.into_keypair()?;
                for pkesk in pkesks.iter().filter(|p| matches!(p, PKESK::V6(_))) {
                    if let Some((algo, sk)) = pkesk.decrypt(&mut keypair, sym_algo) {
                        // The X25519 PKESK's session key is AES-key-wrapped (RFC 3394),
                        // whose integrity check proves the key is right.
                        self.found_session_key.set(true);
                        if decrypt(algo, &sk) {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        Err(policy_error("no session key packet opens with this key").into())
    }
}
