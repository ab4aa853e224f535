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
}

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
