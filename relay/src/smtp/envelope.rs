//! The zero-knowledge rule: only encrypted envelopes are accepted.
//!
//! The structural check (PGP/MIME `multipart/encrypted`, PKESK/SKESK packets then exactly one
//! SEIPD ending at the payload end — chatmail filtermail's rule) belongs to kith-crypto, so
//! that clients, auditors and the relay run the very same code. This module is the relay's
//! single call site for it.
use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::errors::EnvelopeRejected;

/// Checks that `message` is an encrypted envelope; anything else is answered with
/// `523 5.7.1 Encryption Needed` and not stored.
pub(crate) fn is_encrypted_envelope(message: &[u8]) -> Result<(), EnvelopeRejected> {
    // PLACEHOLDER until `kith_crypto::envelope::check_envelope` lands on main: this checks
    // only the PGP/MIME structure, not the OpenPGP packets inside it.
    pgp_mime_structure(message)
}

/// The PGP/MIME (RFC 3156) structure: a top-level `multipart/encrypted` with protocol
/// `application/pgp-encrypted`, a version part and one armored OpenPGP message part.
fn pgp_mime_structure(message: &[u8]) -> Result<(), EnvelopeRejected> {
    let parsed = MessageParser::new()
        .parse(message)
        .ok_or(EnvelopeRejected::NotPgpMime)?;
    let root = parsed.parts.first().ok_or(EnvelopeRejected::NotPgpMime)?;
    let content_type = root.content_type().ok_or(EnvelopeRejected::NotPgpMime)?;
    let is_encrypted = content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("encrypted"))
        && content_type
            .attribute("protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("application/pgp-encrypted"));
    if !is_encrypted {
        return Err(EnvelopeRejected::NotPgpMime);
    }
    let PartType::Multipart(children) = &root.body else {
        return Err(EnvelopeRejected::WrongParts);
    };
    let [version, payload] = children.as_slice() else {
        return Err(EnvelopeRejected::WrongParts);
    };
    let (Some(version), Some(payload)) = (
        parsed.parts.get(*version as usize),
        parsed.parts.get(*payload as usize),
    ) else {
        return Err(EnvelopeRejected::WrongParts);
    };
    let is_version_part = version.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("application")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("pgp-encrypted"))
    });
    if !is_version_part {
        return Err(EnvelopeRejected::WrongParts);
    }
    let payload = payload.contents();
    let text = std::str::from_utf8(payload).map_err(|_| EnvelopeRejected::NoOpenPgpMessage)?;
    let trimmed = text.trim();
    if !trimmed.starts_with("-----BEGIN PGP MESSAGE-----")
        || !trimmed.ends_with("-----END PGP MESSAGE-----")
    {
        return Err(EnvelopeRejected::NoOpenPgpMessage);
    }
    Ok(())
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
    fn a_pgp_mime_message_passes_and_plaintext_does_not() {
        let armored = include_str!("../../tests/fixtures/symmetric-1.asc");
        assert_eq!(is_encrypted_envelope(&envelope(armored)), Ok(()));
        assert_eq!(
            is_encrypted_envelope(b"From: <a@x.test>\r\nSubject: hi\r\n\r\nhello\r\n"),
            Err(EnvelopeRejected::NotPgpMime)
        );
        assert_eq!(
            is_encrypted_envelope(&envelope("just text")),
            Err(EnvelopeRejected::NoOpenPgpMessage)
        );
        assert!(is_encrypted_envelope(b"").is_err());
    }
}
