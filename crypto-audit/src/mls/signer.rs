//! The device's MLS signature key.
use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::SignatureScheme;
use openmls_traits::signatures::{Signer, SignerError};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::errors::MlsSetupError;

/// A device's own MLS signature key (Ed25519, the scheme of ciphersuite 0x0001). Each device
/// has its own; its public half is the leaf's signature key and is named in the device
/// certificate. Zeroized on drop; never printed.
pub struct DeviceSigningKey {
    key: SigningKey,
}

impl DeviceSigningKey {
    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self {
            key: SigningKey::generate(rng),
        }
    }

    /// The key from its 32 secret bytes, as stored by [`DeviceSigningKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MlsSetupError> {
        let secret: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| MlsSetupError::SigningKeyLength {
                expected: 32,
                actual: bytes.len(),
            })?;
        Ok(Self {
            key: SigningKey::from_bytes(secret),
        })
    }

    /// The 32 secret bytes, for the device's own encrypted storage.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key: the leaf's signature key and the certificate's device key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs a Kith control message outside MLS (PROTOCOL.md §10): Ed25519 over
    /// `"kith control v1" || 0x00 || context || 0x00 || message`, so a signature made here can
    /// never be taken for an MLS signature (whose labels start "MLS 1.0 ") or for another
    /// context's.
    pub fn sign_control(&self, context: &str, message: &[u8]) -> [u8; 64] {
        self.key.sign(&control_input(context, message)).to_bytes()
    }
}

fn control_input(context: &str, message: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(17 + context.len() + message.len());
    input.extend_from_slice(b"kith control v1\0");
    input.extend_from_slice(context.as_bytes());
    input.push(0);
    input.extend_from_slice(message);
    input
}

/// Checks a [`DeviceSigningKey::sign_control`] signature by the device whose leaf signature
/// key is `public_key` (strict Ed25519 verification).
pub fn verify_control(public_key: &[u8], context: &str, message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify_strict(
        &control_input(context, message),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .is_ok()
}

// The only field zeroizes itself on drop (ed25519-dalek / x25519-dalek with `zeroize`).
impl zeroize::ZeroizeOnDrop for DeviceSigningKey {}

impl std::fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceSigningKey(public {})",
            hex::encode(self.public_key())
        )
    }
}

impl Signer for DeviceSigningKey {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.sign(payload).to_bytes().to_vec())
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_signatures_bind_key_context_and_message() {
        let mut rng = rand::thread_rng();
        let key = DeviceSigningKey::generate(&mut rng);
        let other = DeviceSigningKey::generate(&mut rng);
        let signature = key.sign_control("branch-lost", b"payload");
        assert!(verify_control(
            &key.public_key(),
            "branch-lost",
            b"payload",
            &signature
        ));
        assert!(!verify_control(
            &other.public_key(),
            "branch-lost",
            b"payload",
            &signature
        ));
        assert!(!verify_control(
            &key.public_key(),
            "rejoin",
            b"payload",
            &signature
        ));
        assert!(!verify_control(
            &key.public_key(),
            "branch-lost",
            b"payloaD",
            &signature
        ));
        assert!(!verify_control(
            &key.public_key(),
            "branch-lost",
            b"payload",
            &signature[..63]
        ));
        assert!(!verify_control(
            &[0; 31],
            "branch-lost",
            b"payload",
            &signature
        ));
    }
}
