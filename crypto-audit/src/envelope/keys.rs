//! The three kinds of envelope key, and what is derived from them (PROTOCOL.md §5.3).
//!
//! - [`SymmetricKey`] of kind [`SymmetricKind::Epoch`]: 32 bytes the caller exports from
//!   the MLS epoch; sealed with SKESK.
//! - [`SymmetricKey`] of kind [`SymmetricKind::Invite`]: 32 bytes the caller derives from
//!   an invite or link secret; sealed with SKESK.
//! - [`DeviceKeypair`] / [`DevicePublicKey`]: a device's X25519 envelope key; sealed with
//!   PKESK v6 to an OpenPGP v6 X25519 key.
//!
//! Every derivation is HKDF-SHA256 with an empty salt and the label as `info`.

use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sequoia_openpgp::packet::key::{Key6, PublicParts, SecretParts, UnspecifiedRole};
use sequoia_openpgp::packet::Key;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::EnvelopeError;

/// Which use a symmetric envelope key has; it separates the derivations of each use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymmetricKind {
    /// A key exported from an MLS epoch, for group traffic.
    Epoch,
    /// A key derived from an invite or link secret, for a handshake's first message.
    Invite,
}

impl SymmetricKind {
    fn label(self, what: &str) -> String {
        let kind = match self {
            SymmetricKind::Epoch => "epoch",
            SymmetricKind::Invite => "invite",
        };
        format!("kith envelope v1 {kind} {what}")
    }
}

/// A 32-byte symmetric envelope key (epoch or invite). Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey {
    #[zeroize(skip)]
    kind: SymmetricKind,
    key: [u8; 32],
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SymmetricKey {
    /// Wraps 32 bytes given by the caller (an MLS export or an invite-derived key).
    pub fn new(kind: SymmetricKind, key: [u8; 32]) -> Self {
        SymmetricKey { kind, key }
    }

    /// The key's kind.
    pub fn kind(&self) -> SymmetricKind {
        self.kind
    }

    /// The SKESK "password": `HKDF(key, info = "kith envelope v1 <kind> skesk", 32)`.
    pub(crate) fn skesk_password(&self) -> Zeroizing<Vec<u8>> {
        derive(&self.key, &self.kind.label("skesk"))
    }

    /// The hint key: `HKDF(key, info = "kith envelope v1 <kind> hint", 32)`.
    pub(crate) fn hint_key(&self) -> Zeroizing<Vec<u8>> {
        derive(&self.key, &self.kind.label("hint"))
    }
}

/// The label of the hint key derived from a device's public envelope key.
pub(crate) const DEVICE_HINT_LABEL: &str = "kith envelope v1 device hint";

/// HKDF-SHA256 with an empty salt, 32 bytes of output.
pub(crate) fn derive(ikm: &[u8], info: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; 32]);
    Hkdf::<Sha256>::new(None, ikm)
        .expand(info.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The creation time written into the OpenPGP key packets: the Unix epoch, so that the
/// key (and its fingerprint) is a function of the 32-byte secret alone.
fn key_epoch() -> std::time::SystemTime {
    std::time::UNIX_EPOCH
}

/// A device's envelope key pair: an X25519 secret, used as an OpenPGP v6 X25519 key.
/// Stored by core as the 32 bytes from [`DeviceKeypair::to_secret_bytes`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceKeypair {
    secret: [u8; 32],
}

impl std::fmt::Debug for DeviceKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeypair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

impl DeviceKeypair {
    /// Generates a fresh envelope key pair.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        DeviceKeypair { secret }
    }

    /// Restores a key pair from the 32 bytes core stored.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        DeviceKeypair { secret }
    }

    /// The 32 secret bytes to store (keep them in a zeroizing buffer).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret)
    }

    /// The public half, to publish to contacts.
    pub fn public(&self) -> DevicePublicKey {
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(self.secret));
        DevicePublicKey {
            public: public.to_bytes(),
        }
    }

    /// The OpenPGP secret key packet sequoia decrypts with.
    pub(crate) fn openpgp_key(&self) -> Result<Key<SecretParts, UnspecifiedRole>, EnvelopeError> {
        let key =
            Key6::<SecretParts, UnspecifiedRole>::import_secret_x25519(&self.secret, key_epoch())
                .map_err(EnvelopeError::openpgp)?;
        Ok(key.into())
    }
}

/// A device's public envelope key: 32 bytes of X25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevicePublicKey {
    public: [u8; 32],
}

impl DevicePublicKey {
    /// Wraps 32 bytes of X25519 public key (as published by the device).
    pub fn from_bytes(public: [u8; 32]) -> Self {
        DevicePublicKey { public }
    }

    /// The 32 bytes of X25519 public key.
    pub fn to_bytes(self) -> [u8; 32] {
        self.public
    }

    /// The hint key: `HKDF(public key, info = "kith envelope v1 device hint", 32)`.
    pub(crate) fn hint_key(&self) -> Zeroizing<Vec<u8>> {
        derive(&self.public, DEVICE_HINT_LABEL)
    }

    /// The OpenPGP public key packet sequoia encrypts to.
    pub(crate) fn openpgp_key(&self) -> Result<Key<PublicParts, UnspecifiedRole>, EnvelopeError> {
        let key =
            Key6::<PublicParts, UnspecifiedRole>::import_public_x25519(&self.public, key_epoch())
                .map_err(EnvelopeError::openpgp)?;
        Ok(key.into())
    }
}

/// The key a sender seals to.
#[derive(Clone, Copy, Debug)]
pub enum SealKey<'a> {
    /// An epoch or invite key (SKESK).
    Symmetric(&'a SymmetricKey),
    /// A device's public envelope key (PKESK).
    Device(&'a DevicePublicKey),
}

/// A key a recipient may open with.
#[derive(Clone, Copy, Debug)]
pub enum OpenKey<'a> {
    /// An epoch or invite key (SKESK).
    Symmetric(&'a SymmetricKey),
    /// This device's envelope key pair (PKESK).
    Device(&'a DeviceKeypair),
}

impl OpenKey<'_> {
    /// The hint key a sender to this key would have used.
    pub(crate) fn hint_key(&self) -> Zeroizing<Vec<u8>> {
        match self {
            OpenKey::Symmetric(k) => k.hint_key(),
            OpenKey::Device(k) => k.public().hint_key(),
        }
    }
}

impl SealKey<'_> {
    /// The hint key for this recipient.
    pub(crate) fn hint_key(&self) -> Zeroizing<Vec<u8>> {
        match self {
            SealKey::Symmetric(k) => k.hint_key(),
            SealKey::Device(k) => k.hint_key(),
        }
    }
}
