//! Device certificates: the identity key vouches for one device's MLS signature key and
//! delivery address. This is Kith's MLS Authentication Service. See PROTOCOL.md §3.
//!
//! Wire form (all integers big-endian):
//!
//! ```text
//! version              u8      = 1
//! identity_key         [32]    Ed25519 public key of the user
//! device_id            [16]    random, chosen by the device
//! device_signature_key [32]    Ed25519 public key of the device's MLS leaf
//! delivery_address     u16 length ‖ UTF-8 bytes (3..=254, printable ASCII, one '@')
//! created_at           u64     seconds since the Unix epoch
//! signature            [64]    Ed25519 by identity_key over
//!                              "kith device certificate v1" ‖ (all the fields above)
//! ```
//! Decoding rejects any other version, a short input and any trailing byte.
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;

use crate::identity::{IdentityError, IdentityKey, IdentityPublicKey};

/// The only certificate version this code writes and reads.
pub const CERTIFICATE_VERSION: u8 = 1;
/// The domain-separation label prefixed to the signed bytes.
pub const CERTIFICATE_SIGNATURE_LABEL: &[u8] = b"kith device certificate v1";
/// Length of a device id.
pub const DEVICE_ID_LEN: usize = 16;
/// Longest delivery address accepted (RFC 5321's path limit).
pub const MAX_ADDRESS_LEN: usize = 254;
const MIN_ADDRESS_LEN: usize = 3;

/// What can go wrong issuing, decoding or verifying a device certificate.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateError {
    /// The input ended before the structure did.
    #[error("certificate truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// How many bytes the field needed.
        needed: usize,
    },
    /// The version byte is not one this code understands.
    #[error("unsupported certificate version {0}")]
    UnsupportedVersion(u8),
    /// Bytes follow the signature.
    #[error("{0} unexpected bytes after the certificate")]
    TrailingBytes(usize),
    /// A public key in the certificate is not a valid Ed25519 key.
    #[error("invalid key in certificate: {0}")]
    InvalidKey(#[from] IdentityError),
    /// The delivery address is empty, too long, not printable ASCII or has no single '@'.
    #[error("invalid delivery address in certificate")]
    InvalidAddress,
    /// The identity signature does not verify.
    #[error("the certificate's signature does not verify")]
    BadSignature,
    /// The certificate is signed by a different identity than the one we know.
    #[error("certificate is signed by identity {found}, expected {expected}")]
    IdentityMismatch {
        /// The identity we know for this contact.
        expected: IdentityPublicKey,
        /// The identity the certificate names.
        found: IdentityPublicKey,
    },
    /// The certificate names a different device key than the leaf that carries it.
    #[error("the certificate's device key differs from the leaf's signature key")]
    LeafKeyMismatch,
    /// The MLS credential is not a basic credential.
    #[error("the MLS credential is not a basic credential")]
    WrongCredentialType,
}

/// A device's id: 16 random bytes, unique per device of a user.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; DEVICE_ID_LEN]);

impl DeviceId {
    /// A fresh random device id.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut id = [0u8; DEVICE_ID_LEN];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

/// A device certificate as carried on the wire; not yet verified unless made by
/// [`DeviceCertificate::issue`]. Call [`DeviceCertificate::verify`] before trusting it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceCertificate {
    identity_key: IdentityPublicKey,
    device_id: DeviceId,
    device_signature_key: [u8; 32],
    delivery_address: String,
    created_at: u64,
    signature: [u8; 64],
}

/// The contents of a certificate whose signature verified (and whose identity matched the
/// expected one, when one was given).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct VerifiedDevice {
    /// The user's identity key that signed the certificate.
    pub identity_key: IdentityPublicKey,
    /// The device's id.
    pub device_id: DeviceId,
    /// The device's MLS signature public key.
    pub device_signature_key: [u8; 32],
    /// The device's delivery address (`local@relay`).
    pub delivery_address: String,
    /// When the certificate was made, in seconds since the Unix epoch.
    pub created_at: u64,
}

impl DeviceCertificate {
    /// Signs a certificate for a device with the user's identity key.
    pub fn issue(
        identity: &IdentityKey,
        device_id: DeviceId,
        device_signature_key: [u8; 32],
        delivery_address: &str,
        created_at: u64,
    ) -> Result<Self, CertificateError> {
        check_address(delivery_address)?;
        IdentityPublicKey::from_bytes(&device_signature_key)?;
        let mut cert = Self {
            identity_key: identity.public_key(),
            device_id,
            device_signature_key,
            delivery_address: delivery_address.to_owned(),
            created_at,
            signature: [0; 64],
        };
        cert.signature = identity.sign_labelled(CERTIFICATE_SIGNATURE_LABEL, &cert.signed_bytes());
        Ok(cert)
    }

    /// The canonical wire form (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the wire form. Checks structure and key validity, not the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader { bytes, offset: 0 };
        let version = r.take(1)?[0];
        if version != CERTIFICATE_VERSION {
            return Err(CertificateError::UnsupportedVersion(version));
        }
        let identity_key = IdentityPublicKey::from_bytes(r.take(32)?)?;
        let device_id = DeviceId(r.array()?);
        let device_signature_key: [u8; 32] = r.array()?;
        IdentityPublicKey::from_bytes(&device_signature_key)?;
        let address_len = u16::from_be_bytes(r.array()?) as usize;
        let address = std::str::from_utf8(r.take(address_len)?)
            .map_err(|_| CertificateError::InvalidAddress)?;
        check_address(address)?;
        let created_at = u64::from_be_bytes(r.array()?);
        let signature: [u8; 64] = r.array()?;
        if r.offset != bytes.len() {
            return Err(CertificateError::TrailingBytes(bytes.len() - r.offset));
        }
        Ok(Self {
            identity_key,
            device_id,
            device_signature_key,
            delivery_address: address.to_owned(),
            created_at,
            signature,
        })
    }

    /// Checks the signature and, if given, that the signer is `expected_identity`.
    pub fn verify(
        &self,
        expected_identity: Option<&IdentityPublicKey>,
    ) -> Result<VerifiedDevice, CertificateError> {
        if let Some(expected) = expected_identity {
            if *expected != self.identity_key {
                return Err(CertificateError::IdentityMismatch {
                    expected: *expected,
                    found: self.identity_key,
                });
            }
        }
        let signed = self.signed_bytes();
        if !self
            .identity_key
            .verify_labelled(CERTIFICATE_SIGNATURE_LABEL, &signed, &self.signature)
        {
            return Err(CertificateError::BadSignature);
        }
        Ok(VerifiedDevice {
            identity_key: self.identity_key,
            device_id: self.device_id,
            device_signature_key: self.device_signature_key,
            delivery_address: self.delivery_address.clone(),
            created_at: self.created_at,
        })
    }

    /// The identity key the certificate claims to be signed by (unverified).
    pub fn identity_key(&self) -> &IdentityPublicKey {
        &self.identity_key
    }

    /// The device signature key the certificate names (unverified).
    pub fn device_signature_key(&self) -> &[u8; 32] {
        &self.device_signature_key
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let address = self.delivery_address.as_bytes();
        let mut out = Vec::with_capacity(1 + 32 + 16 + 32 + 2 + address.len() + 8 + 64);
        out.push(CERTIFICATE_VERSION);
        out.extend_from_slice(&self.identity_key.to_bytes());
        out.extend_from_slice(&self.device_id.0);
        out.extend_from_slice(&self.device_signature_key);
        // check_address bounds the length to 254, so it fits in a u16.
        out.extend_from_slice(&(address.len() as u16).to_be_bytes());
        out.extend_from_slice(address);
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out
    }
}

/// Checks the delivery-address rule: 3..=254 bytes of printable ASCII with exactly one '@',
/// not at either end.
pub(crate) fn check_address(address: &str) -> Result<(), CertificateError> {
    let bytes = address.as_bytes();
    let printable = bytes.iter().all(|b| (0x21..=0x7e).contains(b));
    let ats = bytes.iter().filter(|&&b| b == b'@').count();
    let ok = (MIN_ADDRESS_LEN..=MAX_ADDRESS_LEN).contains(&bytes.len())
        && printable
        && ats == 1
        && !address.starts_with('@')
        && !address.ends_with('@');
    if ok {
        Ok(())
    } else {
        Err(CertificateError::InvalidAddress)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CertificateError> {
        let rest = &self.bytes[self.offset..];
        if rest.len() < n {
            return Err(CertificateError::Truncated {
                offset: self.offset,
                needed: n,
            });
        }
        self.offset += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CertificateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn sample() -> (IdentityKey, DeviceCertificate) {
        let identity = IdentityKey::generate(&mut OsRng);
        let device = IdentityKey::generate(&mut OsRng).public_key().to_bytes();
        let id = DeviceId::generate(&mut OsRng);
        let cert =
            DeviceCertificate::issue(&identity, id, device, "abc123@relay.example", 1_700_000_000)
                .expect("valid inputs");
        (identity, cert)
    }

    #[test]
    fn issued_certificate_round_trips_and_verifies() {
        let (identity, cert) = sample();
        let decoded = DeviceCertificate::decode(&cert.encode()).expect("decodes");
        assert_eq!(decoded, cert);
        let verified = decoded
            .verify(Some(&identity.public_key()))
            .expect("verifies");
        assert_eq!(verified.delivery_address, "abc123@relay.example");
        assert_eq!(verified.created_at, 1_700_000_000);
        assert!(decoded.verify(None).is_ok());
    }

    #[test]
    fn wrong_identity_and_tampering_are_rejected() {
        let (_, cert) = sample();
        let other = IdentityKey::generate(&mut OsRng).public_key();
        assert!(matches!(
            cert.verify(Some(&other)),
            Err(CertificateError::IdentityMismatch { .. })
        ));
        let mut bytes = cert.encode();
        let n = bytes.len();
        bytes[n - 9 - 64] ^= 1; // created_at
        assert_eq!(
            DeviceCertificate::decode(&bytes)
                .expect("still parses")
                .verify(None),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn structure_errors_are_specific() {
        let (_, cert) = sample();
        let mut bytes = cert.encode();
        bytes.push(0);
        assert_eq!(
            DeviceCertificate::decode(&bytes),
            Err(CertificateError::TrailingBytes(1))
        );
        bytes.truncate(bytes.len() - 2);
        assert!(matches!(
            DeviceCertificate::decode(&bytes),
            Err(CertificateError::Truncated { .. })
        ));
        let mut v2 = cert.encode();
        v2[0] = 2;
        assert_eq!(
            DeviceCertificate::decode(&v2),
            Err(CertificateError::UnsupportedVersion(2))
        );
        assert!(matches!(
            DeviceCertificate::decode(&[]),
            Err(CertificateError::Truncated { .. })
        ));
    }

    #[test]
    fn addresses_are_checked() {
        for bad in ["", "a@", "@b", "ab", "a b@c", "a@b@c", "é@x.org"] {
            assert_eq!(
                check_address(bad),
                Err(CertificateError::InvalidAddress),
                "{bad:?}"
            );
        }
        assert!(check_address("x@y").is_ok());
        assert!(check_address(&format!("{}@y", "a".repeat(252))).is_ok());
        assert!(check_address(&format!("{}@y", "a".repeat(253))).is_err());
    }
}
