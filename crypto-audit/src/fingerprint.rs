//! Identity fingerprints: what people compare to verify each other. See PROTOCOL.md §2.
//!
//! `fingerprint = SHA-256("kith identity fingerprint v1" ‖ identity_public_key[32])`.
//!
//! Shown as a *safety number*: the 32-byte fingerprint read as a big-endian 256-bit
//! integer, reduced modulo 10^60, written as 60 decimal digits (leading zeros kept) in 12
//! groups of 5 (≈199 bits; the reduction's bias is below 2^-190). The compact form for QR
//! codes and links is `kith:fp1/` followed by the 32 bytes in unpadded base64url.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::identity::IdentityPublicKey;

/// The domain-separation label hashed before the identity key.
pub const FINGERPRINT_LABEL: &[u8] = b"kith identity fingerprint v1";
/// The prefix of the compact form.
pub const FINGERPRINT_URI_PREFIX: &str = "kith:fp1/";
/// Number of digits in a safety number.
pub const SAFETY_NUMBER_DIGITS: usize = 60;

/// What can go wrong reading a fingerprint someone typed or scanned.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FingerprintError {
    /// A safety number must have exactly 60 digits (spaces are ignored).
    #[error("a safety number has {SAFETY_NUMBER_DIGITS} digits, found {0}")]
    WrongDigitCount(usize),
    /// Something other than a digit or a space was typed.
    #[error("unexpected character {0:?} in a safety number")]
    UnexpectedCharacter(char),
    /// The compact form does not start with `kith:fp1/`.
    #[error("not a Kith fingerprint link (expected it to start with {FINGERPRINT_URI_PREFIX})")]
    NotAFingerprintUri,
    /// The compact form's payload is not unpadded base64url of 32 bytes.
    #[error("the fingerprint link is damaged (bad base64url or not 32 bytes)")]
    MalformedUri,
}

/// The SHA-256 fingerprint of an identity key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `identity`.
    pub fn of(identity: &IdentityPublicKey) -> Self {
        let mut hash = Sha256::new();
        hash.update(FINGERPRINT_LABEL);
        hash.update(identity.to_bytes());
        Self(hash.finalize().into())
    }

    /// A fingerprint from its 32 bytes (as carried in an invite payload).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 60-digit safety number in 12 groups of 5, separated by single spaces.
    pub fn safety_number(&self) -> String {
        let digits = decimal_digits(&self.0, SAFETY_NUMBER_DIGITS);
        let groups: Vec<&str> = digits
            .as_bytes()
            .chunks(5)
            .map(|g| std::str::from_utf8(g).expect("ASCII digits"))
            .collect();
        groups.join(" ")
    }

    /// Whether a typed or read-out safety number is this fingerprint's. Spaces are ignored;
    /// any other non-digit, or a digit count other than 60, is an error (so that a mistyped
    /// number is reported as such rather than as "does not match").
    pub fn matches_safety_number(&self, typed: &str) -> Result<bool, FingerprintError> {
        let mut digits = String::with_capacity(SAFETY_NUMBER_DIGITS);
        for c in typed.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '\t' | '\n' => {}
                other => return Err(FingerprintError::UnexpectedCharacter(other)),
            }
        }
        if digits.len() != SAFETY_NUMBER_DIGITS {
            return Err(FingerprintError::WrongDigitCount(digits.len()));
        }
        Ok(digits == self.safety_number().replace(' ', ""))
    }

    /// The compact form for QR codes: `kith:fp1/<base64url of the 32 bytes>`.
    pub fn to_uri(&self) -> String {
        format!("{FINGERPRINT_URI_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }

    /// Parses the compact form.
    pub fn parse_uri(uri: &str) -> Result<Self, FingerprintError> {
        let payload = uri
            .strip_prefix(FINGERPRINT_URI_PREFIX)
            .ok_or(FingerprintError::NotAFingerprintUri)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| FingerprintError::MalformedUri)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| FingerprintError::MalformedUri)?;
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", hex::encode(self.0))
    }
}

/// The low `count` decimal digits of the big-endian integer `bytes`, zero-padded.
fn decimal_digits(bytes: &[u8], count: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(count);
    for _ in 0..count {
        // Divide `number` by 10 in place (schoolbook long division), keep the remainder.
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 10) as u8;
            remainder = acc % 10;
        }
        digits.push(b'0' + remainder as u8);
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKey;
    use rand::rngs::OsRng;

    #[test]
    fn decimal_digits_match_known_numbers() {
        assert_eq!(decimal_digits(&[0x01, 0x00], 5), "00256");
        assert_eq!(decimal_digits(&[0xff; 8], 20), "18446744073709551615");
        assert_eq!(decimal_digits(&[0xff; 8], 3), "615");
    }

    #[test]
    fn safety_number_format_and_matching() {
        let fp = Fingerprint::of(&IdentityKey::generate(&mut OsRng).public_key());
        let number = fp.safety_number();
        assert_eq!(number.len(), 60 + 11);
        assert_eq!(number.split(' ').count(), 12);
        assert_eq!(fp.matches_safety_number(&number), Ok(true));
        assert_eq!(fp.matches_safety_number(&number.replace(' ', "")), Ok(true));
        let mut wrong = number.clone().into_bytes();
        wrong[0] = if wrong[0] == b'1' { b'2' } else { b'1' };
        let wrong = String::from_utf8(wrong).expect("ASCII");
        assert_eq!(fp.matches_safety_number(&wrong), Ok(false));
        assert_eq!(
            fp.matches_safety_number("123"),
            Err(FingerprintError::WrongDigitCount(3))
        );
        assert_eq!(
            fp.matches_safety_number("12a"),
            Err(FingerprintError::UnexpectedCharacter('a'))
        );
    }

    #[test]
    fn uri_round_trips_and_errors_are_clear() {
        let fp = Fingerprint::of(&IdentityKey::generate(&mut OsRng).public_key());
        assert_eq!(Fingerprint::parse_uri(&fp.to_uri()), Ok(fp));
        assert_eq!(
            Fingerprint::parse_uri("https://x/"),
            Err(FingerprintError::NotAFingerprintUri)
        );
        assert_eq!(
            Fingerprint::parse_uri("kith:fp1/AAAA"),
            Err(FingerprintError::MalformedUri)
        );
        assert_eq!(
            Fingerprint::parse_uri("kith:fp1/!!"),
            Err(FingerprintError::MalformedUri)
        );
    }
}
