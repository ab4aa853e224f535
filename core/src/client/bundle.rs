//! The key bundle: what one device hands another out of band so that it can be added to a
//! group (its address, envelope key, identity key and one KeyPackage). It stands in for the
//! invite handshake, which will carry the same data.
//!
//! Wire format, version 1 (all lengths big-endian):
//! `0x01 | u16 address length | address (UTF-8) | 32-byte envelope public key |
//! 32-byte identity public key | u32 KeyPackage length | KeyPackage`. Nothing may follow.
use kith_crypto::envelope::DevicePublicKey;
use kith_crypto::identity::IdentityPublicKey;
use thiserror::Error;

/// The only bundle version this code writes and reads.
pub const BUNDLE_VERSION: u8 = 1;
/// The longest KeyPackage a bundle may carry (64 KiB; real ones are well under 1 KiB).
pub const MAX_KEY_PACKAGE_LEN: usize = 64 * 1024;

/// A device's key bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The device's delivery address.
    pub address: String,
    /// The device's envelope public key (Welcomes are sealed to it).
    pub envelope_key: DevicePublicKey,
    /// The user's identity public key.
    pub identity: IdentityPublicKey,
    /// A TLS-serialized MLS KeyPackage of the device.
    pub key_package: Vec<u8>,
}

/// Why bytes are not a bundle.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleError {
    /// The bytes end before the field named.
    #[error("bundle truncated in {0}")]
    Truncated(&'static str),
    /// The version byte is not one this code reads.
    #[error("bundle version {0} is not supported (expected {BUNDLE_VERSION})")]
    UnsupportedVersion(u8),
    /// The address is not UTF-8 or is empty.
    #[error("bundle address is not a non-empty UTF-8 string")]
    BadAddress,
    /// The identity key bytes are not a valid key.
    #[error("bundle identity key is invalid")]
    BadIdentity,
    /// The KeyPackage is empty or longer than [`MAX_KEY_PACKAGE_LEN`].
    #[error("bundle KeyPackage length {0} is out of range")]
    KeyPackageLength(usize),
    /// Bytes follow the KeyPackage.
    #[error("{0} bytes follow the bundle")]
    TrailingBytes(usize),
    /// A field is too long to encode.
    #[error("bundle {0} is too long to encode")]
    TooLong(&'static str),
}

impl Bundle {
    /// Encodes the bundle.
    pub fn encode(&self) -> Result<Vec<u8>, BundleError> {
        let address_len =
            u16::try_from(self.address.len()).map_err(|_| BundleError::TooLong("address"))?;
        if self.key_package.is_empty() || self.key_package.len() > MAX_KEY_PACKAGE_LEN {
            return Err(BundleError::KeyPackageLength(self.key_package.len()));
        }
        let mut out = Vec::with_capacity(71 + self.address.len() + self.key_package.len());
        out.push(BUNDLE_VERSION);
        out.extend_from_slice(&address_len.to_be_bytes());
        out.extend_from_slice(self.address.as_bytes());
        out.extend_from_slice(&self.envelope_key.to_bytes());
        out.extend_from_slice(&self.identity.to_bytes());
        out.extend_from_slice(&(self.key_package.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.key_package);
        Ok(out)
    }

    /// Decodes a bundle, rejecting unknown versions and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        let mut reader = Reader(bytes);
        let [version] = reader.take::<1>("version")?;
        if version != BUNDLE_VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let address_len = u16::from_be_bytes(reader.take("address length")?) as usize;
        let address = std::str::from_utf8(reader.slice(address_len, "address")?)
            .map_err(|_| BundleError::BadAddress)?;
        if address.is_empty() {
            return Err(BundleError::BadAddress);
        }
        let envelope_key = DevicePublicKey::from_bytes(reader.take("envelope key")?);
        let identity = IdentityPublicKey::from_bytes(&reader.take::<32>("identity key")?)
            .map_err(|_| BundleError::BadIdentity)?;
        let kp_len = u32::from_be_bytes(reader.take("KeyPackage length")?) as usize;
        if kp_len == 0 || kp_len > MAX_KEY_PACKAGE_LEN {
            return Err(BundleError::KeyPackageLength(kp_len));
        }
        let key_package = reader.slice(kp_len, "KeyPackage")?.to_vec();
        if !reader.0.is_empty() {
            return Err(BundleError::TrailingBytes(reader.0.len()));
        }
        Ok(Self {
            address: address.to_owned(),
            envelope_key,
            identity,
            key_package,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn slice(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], BundleError> {
        if self.0.len() < len {
            return Err(BundleError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], BundleError> {
        let bytes = self.slice(N, what)?;
        Ok(bytes.try_into().expect("slice has exactly N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_crypto::envelope::DeviceKeypair;
    use kith_crypto::identity::IdentityKey;
    use proptest::prelude::*;
    use rand::rngs::OsRng;

    fn sample(address: &str, key_package: Vec<u8>) -> Bundle {
        Bundle {
            address: address.into(),
            envelope_key: DeviceKeypair::generate(&mut OsRng).public(),
            identity: IdentityKey::generate(&mut OsRng).public_key(),
            key_package,
        }
    }

    #[test]
    fn trailing_bytes_truncation_and_versions_are_refused() {
        let bytes = sample("a@relay.test", vec![7; 40]).encode().unwrap();
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Bundle::decode(&longer), Err(BundleError::TrailingBytes(1)));
        assert_eq!(
            Bundle::decode(&bytes[..bytes.len() - 1]),
            Err(BundleError::Truncated("KeyPackage"))
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(Bundle::decode(&v2), Err(BundleError::UnsupportedVersion(2)));
        assert_eq!(Bundle::decode(&[]), Err(BundleError::Truncated("version")));
    }

    proptest! {
        #[test]
        fn bundles_round_trip(address in "[a-z0-9]{1,40}@[a-z.]{1,20}",
                              kp in proptest::collection::vec(any::<u8>(), 1..300)) {
            let bundle = sample(&address, kp);
            prop_assert_eq!(Bundle::decode(&bundle.encode().unwrap()).unwrap(), bundle);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Bundle::decode(&bytes);
        }
    }
}
