//! Key backup: OpenPGP password-based encryption under a recovery code (PROTOCOL.md §8).
//!
//! A backup is an ASCII-armored OpenPGP message: one SKESK v6 packet with an Argon2id S2K
//! (t = 3 passes, p = 4 lanes, m = 2^16 KiB = 64 MiB, 16-byte random salt; RFC 9580's
//! second recommended setting), AES-256 and OCB, then one SEIPD v2 packet (AES-256, OCB,
//! 4 KiB chunks) holding a literal data packet with the plaintext. sequoia never chooses
//! Argon2 by itself, so the SKESK is built here explicitly. The password is the recovery
//! code's 27 canonical symbols. The format is standard, so `sq decrypt` with the code
//! also opens a backup.

use std::io::Write;

use sequoia_openpgp::crypto::{Password, SessionKey, S2K};
use sequoia_openpgp::packet::skesk::SKESK6;
use sequoia_openpgp::packet::Packet;
use sequoia_openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use sequoia_openpgp::serialize::Serialize;
use zeroize::Zeroizing;

pub(crate) mod vectors;

use crate::envelope::check::{check_packets, dearmor};
use crate::envelope::open::{decrypt, Unlock};
use crate::envelope::seal::{armor_message, with_definite_lengths, AEAD_ALGO, SYMMETRIC_ALGO};
use crate::envelope::EnvelopeError;
use crate::recovery_code::RecoveryCode;

/// Argon2 passes.
pub const ARGON2_T: u8 = 3;
/// Argon2 lanes.
pub const ARGON2_P: u8 = 4;
/// Argon2 memory exponent: 2^16 KiB = 64 MiB.
pub const ARGON2_M: u8 = 16;

/// Why a backup could not be made or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The backup is not an armored OpenPGP message of the expected shape.
    #[error("not a Kith backup: {0}")]
    Malformed(EnvelopeError),
    /// The recovery code does not open this backup.
    #[error("the recovery code does not open this backup")]
    WrongCode,
    /// The backup was modified or damaged (authentication failed).
    #[error("the backup is damaged or was tampered with: {reason}")]
    Damaged {
        /// What failed.
        reason: String,
    },
    /// sequoia failed to build the backup.
    #[error("OpenPGP error: {reason}")]
    OpenPgp {
        /// sequoia's message.
        reason: String,
    },
}

fn openpgp(err: impl std::fmt::Display) -> BackupError {
    BackupError::OpenPgp {
        reason: err.to_string(),
    }
}

/// Encrypts `plaintext` under `code` (SKESK v6 + Argon2id, SEIPD v2), ASCII-armored.
pub fn encrypt_backup(plaintext: &[u8], code: &RecoveryCode) -> Result<Vec<u8>, BackupError> {
    let mut streamed = Vec::new();
    {
        let mut message = Message::new(&mut streamed);
        let session_key = SessionKey::new(32).map_err(openpgp)?;
        let mut salt = [0u8; 16];
        sequoia_openpgp::crypto::random(&mut salt).map_err(openpgp)?;
        let s2k = S2K::Argon2 {
            salt,
            t: ARGON2_T,
            p: ARGON2_P,
            m: ARGON2_M,
        };
        let password = Password::from(code.password_bytes().to_vec());
        let skesk = SKESK6::with_password(
            SYMMETRIC_ALGO,
            SYMMETRIC_ALGO,
            AEAD_ALGO,
            s2k,
            &session_key,
            &password,
        )
        .map_err(openpgp)?;
        Packet::SKESK(skesk.into())
            .serialize(&mut message)
            .map_err(openpgp)?;
        let message = Encryptor::with_session_key(message, SYMMETRIC_ALGO, session_key)
            .map_err(openpgp)?
            .aead_algo(AEAD_ALGO)
            .build()
            .map_err(openpgp)?;
        let mut literal = LiteralWriter::new(message).build().map_err(openpgp)?;
        literal.write_all(plaintext).map_err(openpgp)?;
        literal.finalize().map_err(openpgp)?;
    }
    let payload = with_definite_lengths(&streamed).map_err(BackupError::Malformed)?;
    Ok(armor_message(&payload)
        .map_err(BackupError::Malformed)?
        .into_bytes())
}

/// Decrypts a backup with `code`. The code's checksum was already checked when it was
/// parsed; this runs Argon2 once per SKESK v6 packet.
pub fn decrypt_backup(
    backup: &[u8],
    code: &RecoveryCode,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let payload = dearmor(backup).map_err(BackupError::Malformed)?;
    check_packets(&payload).map_err(BackupError::Malformed)?;
    let unlock = Unlock::Password(Password::from(code.password_bytes().to_vec()));
    decrypt(&payload, &unlock).map_err(|e| match e {
        EnvelopeError::WrongKey => BackupError::WrongCode,
        EnvelopeError::DecryptionFailed { reason } => BackupError::Damaged { reason },
        other => BackupError::Malformed(other),
    })
}
