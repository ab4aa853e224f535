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
use openmls::prelude::{BasicCredential, Credential, CredentialWithKey, SignaturePublicKey};

use crate::certificate::{CertificateError, DeviceCertificate, VerifiedDevice};
use crate::identity::IdentityPublicKey;

/// The credential and signature key a device uses for its KeyPackages and leaves.
pub fn credential_with_key(certificate: &DeviceCertificate) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(certificate.encode()).into(),
        signature_key: SignaturePublicKey::from(&certificate.device_signature_key()[..]),
    }
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
