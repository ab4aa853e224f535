//! Opening: an envelope and a key in, the frame out (PROTOCOL.md §5).

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
use super::keys::OpenKey;
use super::EnvelopeError;
use crate::frame::Frame;

/// Opens an envelope with `key`: runs [`check_envelope`](super::check_envelope)'s checks
/// first, then decrypts (SEIPD v2 only, no signatures, no compression) and decodes the
/// frame.
pub fn open(message: &[u8], key: OpenKey<'_>) -> Result<Frame, EnvelopeError> {
    let payload = dearmor(&pgp_part(message)?)?;
    check_packets(&payload)?;
    let plaintext = decrypt(&payload, key)?;
    Ok(Frame::decode(&plaintext)?)
}

/// Decrypts a checked binary OpenPGP message.
pub(crate) fn decrypt(
    payload: &[u8],
    key: OpenKey<'_>,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let policy = StandardPolicy::new();
    let helper = Helper {
        key,
        found_session_key: false,
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
        Err(e) => return Err(failed(&e, false)),
    };
    let mut plaintext = Zeroizing::new(Vec::new());
    let read = decryptor.read_to_end(&mut plaintext);
    let found = decryptor.helper_ref().found_session_key;
    match read {
        Ok(_) if decryptor.message_processed() => Ok(plaintext),
        Ok(_) => Err(EnvelopeError::DecryptionFailed {
            reason: "message not fully processed".to_owned(),
        }),
        Err(e) => Err(failed(&e, found)),
    }
}

struct Helper<'a> {
    key: OpenKey<'a>,
    found_session_key: bool,
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
        match self.key {
            OpenKey::Symmetric(key) => {
                let password = Password::from(key.skesk_password().to_vec());
                for skesk in skesks.iter().filter(|s| matches!(s, SKESK::V6(_))) {
                    if let Ok((algo, sk)) = skesk.decrypt(&password) {
                        if decrypt(algo, &sk) {
                            self.found_session_key = true;
                            return Ok(None);
                        }
                    }
                }
            }
            OpenKey::Device(pair) => {
                let mut keypair = pair.openpgp_key()?.into_keypair()?;
                for pkesk in pkesks.iter().filter(|p| matches!(p, PKESK::V6(_))) {
                    if let Some((algo, sk)) = pkesk.decrypt(&mut keypair, sym_algo) {
                        if decrypt(algo, &sk) {
                            self.found_session_key = true;
                            return Ok(None);
                        }
                    }
                }
            }
        }
        Err(policy_error("no session key packet opens with this key").into())
    }
}
