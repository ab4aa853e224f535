//! The user's long-term identity key (Ed25519). See PROTOCOL.md §2.
//!
//! One identity key per user, on every device of the user (copied during linking, and in
//! the backup). It signs device certificates and nothing else; every signature it makes is
//! over a domain-separation label followed by the signed structure.
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Length of an identity public key and of an identity secret key, in bytes.
pub const IDENTITY_KEY_LEN: usize = 32;

/// What can go wrong with identity key bytes.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not 32 long.
    #[error("an identity key must be {IDENTITY_KEY_LEN} bytes, got {0}")]
    WrongLength(usize),
    /// The bytes are not a valid Ed25519 public key (not a curve point, or a weak point).
    #[error("the bytes are not a valid Ed25519 public key")]
    InvalidPublicKey,
}

/// The user's identity secret key. Zeroized on drop; its Debug output shows only the public
/// key.
pub struct IdentityKey {
    key: SigningKey,
}

impl IdentityKey {
    /// A fresh random identity key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self {
            key: SigningKey::generate(rng),
        }
    }

    /// The key from its 32 secret bytes, as produced by [`IdentityKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let secret: &[u8; IDENTITY_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| IdentityError::WrongLength(bytes.len()))?;
        Ok(Self {
            key: SigningKey::from_bytes(secret),
        })
    }

    /// The 32 secret bytes (the Ed25519 seed), for storage and backup.
    pub fn to_bytes(&self) -> Zeroizing<[u8; IDENTITY_KEY_LEN]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> IdentityPublicKey {
        IdentityPublicKey(self.key.verifying_key().to_bytes())
    }

    /// Signs `label ‖ message`. Only this crate signs with the identity key, and only with
    /// labels listed in PROTOCOL.md.
    pub(crate) fn sign_labelled(&self, label: &[u8], message: &[u8]) -> [u8; 64] {
        let mut signed = Zeroizing::new(Vec::with_capacity(label.len() + message.len()));
        signed.extend_from_slice(label);
        signed.extend_from_slice(message);
        self.key.sign(&signed).to_bytes()
    }
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey(public {})", self.public_key())
    }
}

/// A user's identity public key: 32 bytes, checked to be a valid, non-weak Ed25519 point
/// when made.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityPublicKey([u8; IDENTITY_KEY_LEN]);

impl IdentityPublicKey {
    /// The key from its 32 bytes; rejects non-points and small-order (weak) points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let raw: &[u8; IDENTITY_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| IdentityError::WrongLength(bytes.len()))?;
        let key = VerifyingKey::from_bytes(raw).map_err(|_| IdentityError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(IdentityError::InvalidPublicKey);
        }
        Ok(Self(key.to_bytes()))
    }

    /// The 32 bytes of the key.
    pub fn to_bytes(&self) -> [u8; IDENTITY_KEY_LEN] {
        self.0
    }

    /// Checks a signature made by [`IdentityKey::sign_labelled`] with the same label, using
    /// Ed25519's strict verification (rejects malleable and small-order signatures).
    pub(crate) fn verify_labelled(
        &self,
        label: &[u8],
        message: &[u8],
        signature: &[u8; 64],
    ) -> bool {
        let mut signed = Vec::with_capacity(label.len() + message.len());
        signed.extend_from_slice(label);
        signed.extend_from_slice(message);
        // The bytes were checked to be a valid point when this key was made.
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(&signed, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl std::fmt::Display for IdentityPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl std::fmt::Debug for IdentityPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityPublicKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn secret_round_trips_and_debug_hides_it() {
        let key = IdentityKey::generate(&mut OsRng);
        let restored = IdentityKey::from_bytes(&key.to_bytes()[..]).expect("32 bytes");
        assert_eq!(key.public_key(), restored.public_key());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&hex::encode(&key.to_bytes()[..])));
        assert!(debug.contains(&key.public_key().to_string()));
    }

    #[test]
    fn labelled_signature_is_bound_to_its_label() {
        let key = IdentityKey::generate(&mut OsRng);
        let sig = key.sign_labelled(b"label a", b"message");
        assert!(key
            .public_key()
            .verify_labelled(b"label a", b"message", &sig));
        assert!(!key
            .public_key()
            .verify_labelled(b"label b", b"message", &sig));
        assert!(!key
            .public_key()
            .verify_labelled(b"label a", b"messagf", &sig));
    }

    #[test]
    fn bad_public_keys_are_rejected() {
        assert_eq!(
            IdentityPublicKey::from_bytes(&[0u8; 31]),
            Err(IdentityError::WrongLength(31))
        );
        // The identity point (small order) is weak.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            IdentityPublicKey::from_bytes(&identity_point),
            Err(IdentityError::InvalidPublicKey)
        );
        assert!(IdentityKey::from_bytes(&[0u8; 33]).is_err());
    }
}
