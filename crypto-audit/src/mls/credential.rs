//! How a device certificate rides in an MLS credential, and the check core runs on every
//! leaf it accepts.
//!
//! The certificate is the `identity` of an MLS BasicCredential (RFC 9420 §5.3: the identity
//! bytes are opaque to MLS and their meaning is left to the Authentication Service). A
//! custom credential type would need an entry in every KeyPackage's and the group's
//! capabilities (and a required-capabilities extension to be enforced), which adds moving
//! parts to every join without adding a check: openmls verifies the leaf's signature with
//! its `signature_key` whatever the credential type, and the binding between that key and
//! the user is exactly what [`verify_leaf_credential`] establishes.
use openmls::prelude::{
    BasicCredential, Credential, CredentialWithKey, KeyPackage, KeyPackageBundle,
    KeyPackageNewError, Lifetime, SignaturePublicKey,
};

use super::config::{leaf_capabilities, CIPHERSUITE};
use super::provider::KithProvider;
use super::signer::DeviceSigningKey;

use crate::certificate::{CertificateError, DeviceCertificate, VerifiedDevice};
use crate::identity::IdentityPublicKey;

/// The (not before, not after) Unix times of KeyPackages and group creators' leaves made by
/// a seeded provider (simulation only): 2023-11-14 minus an hour, to 2100-01-01. A lifetime read from the
/// wall clock would make a replay's commits differ whenever a second boundary falls
/// differently. openmls checks only that "now" lies inside it, not its length.
pub const SEEDED_KEY_PACKAGE_LIFETIME: (u64, u64) = (1_700_000_000 - 3600, 4_102_444_800);

/// [`SEEDED_KEY_PACKAGE_LIFETIME`] as an openmls lifetime.
pub(crate) fn seeded_lifetime() -> Lifetime {
    let (not_before, not_after) = SEEDED_KEY_PACKAGE_LIFETIME;
    Lifetime::init(not_before, not_after)
}

/// The credential and signature key a device uses for its KeyPackages and leaves.
pub fn credential_with_key(certificate: &DeviceCertificate) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(certificate.encode()).into(),
        signature_key: SignaturePublicKey::from(&certificate.device_signature_key()[..]),
    }
}

/// A new KeyPackage for this device (ciphersuite 0x0001, its certificate as credential),
/// stored with its private keys in the provider's storage; publish `bundle.key_package()`.
/// A last-resort package may be used by several adders and is kept after use.
///
/// Its lifetime starts an hour before now (the wall clock) and lasts openmls's default 12
/// weeks; a [`KithProvider::seeded`] provider gives instead the fixed
/// [`SEEDED_KEY_PACKAGE_LIFETIME`], so that the package's bytes depend on the seed alone.
pub fn new_key_package(
    provider: &KithProvider<'_>,
    signer: &DeviceSigningKey,
    certificate: &DeviceCertificate,
    is_last_resort: bool,
) -> Result<KeyPackageBundle, KeyPackageNewError> {
    let mut builder = KeyPackage::builder();
    if provider.is_seeded() {
        builder = builder.key_package_lifetime(seeded_lifetime());
    }
    // A KeyPackage extension must also be listed in its leaf's capabilities, or adding it
    // fails with UnsupportedExtension; the admin list must be, or no group admits the leaf.
    builder = builder.leaf_node_capabilities(leaf_capabilities(is_last_resort));
    if is_last_resort {
        builder = builder.mark_as_last_resort();
    }
    builder.build(
        CIPHERSUITE,
        provider,
        signer,
        credential_with_key(certificate),
    )
}

/// Checks a leaf's credential: it must be a basic credential holding a device certificate
/// that verifies, is signed by `expected_identity` when given (the identity we know for that
/// contact), and names exactly `leaf_signature_key`, the key the leaf signs with.
///
/// Core calls this for every leaf it accepts: in a Welcome's tree, in each add or update a
/// commit carries, and for a KeyPackage before adding its owner.
pub fn verify_leaf_credential(
    credential: &Credential,
    leaf_signature_key: &SignaturePublicKey,
    expected_identity: Option<&IdentityPublicKey>,
) -> Result<VerifiedDevice, CertificateError> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| CertificateError::WrongCredentialType)?;
    let certificate = DeviceCertificate::decode(basic.identity())?;
    let verified = certificate.verify(expected_identity)?;
    if verified.device_signature_key[..] != *leaf_signature_key.as_slice() {
        return Err(CertificateError::LeafKeyMismatch);
    }
    Ok(verified)
}
