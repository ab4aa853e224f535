//! The zero-knowledge rule: only encrypted envelopes are accepted.
//!
//! The structural check (PGP/MIME `multipart/encrypted`, PKESK/SKESK packets then exactly one
//! SEIPD ending at the payload end — chatmail filtermail's rule) lives in kith-crypto, so
//! that clients, auditors and the relay run the very same code. This module is the relay's
//! single call site for it.
use kith_crypto::envelope::{check_envelope, EnvelopeError};

/// Checks that `message` is an encrypted envelope; anything else is answered with
/// `523 5.7.1 Encryption Needed` and not stored.
pub(crate) fn is_encrypted_envelope(message: &[u8]) -> Result<(), EnvelopeError> {
    check_envelope(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: &str) -> Vec<u8> {
        format!(
            "From: <a@x.test>\r\nSubject: [...]\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"XX\"\r\n\r\n\
             --XX\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
             --XX\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{payload}\r\n--XX--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn gpg_made_envelopes_pass_and_everything_else_is_refused() {
        for armored in [
            include_str!("../../tests/fixtures/symmetric-1.asc"),
            include_str!("../../tests/fixtures/symmetric-2.asc"),
            include_str!("../../tests/fixtures/symmetric-3.asc"),
        ] {
            assert!(is_encrypted_envelope(&envelope(armored)).is_ok());
            assert!(is_encrypted_envelope(&envelope(&armored.replace('\n', "\r\n"))).is_ok());
        }
        assert!(
            is_encrypted_envelope(b"From: <a@x.test>\r\nSubject: hi\r\n\r\nhello\r\n").is_err()
        );
        assert!(is_encrypted_envelope(&envelope("just text")).is_err());
        let signed_only = include_str!("../../tests/fixtures/signed-cleartext.asc");
        assert!(is_encrypted_envelope(&envelope(signed_only)).is_err());
        assert!(is_encrypted_envelope(b"").is_err());
    }
}
