//! A memo of the leaf certificates that verified: the member list is read from the MLS
//! state on nearly every call, and verifying each leaf's certificate again (an Ed25519
//! signature per member) was a tenth of the simulator's time.
//!
//! Verifying a certificate with no expected identity and no clock
//! (`verify_leaf_credential(.., None)`) depends on nothing but the credential's bytes and
//! the leaf's signature key, so the memo keys on exactly those bytes and keeps only what
//! verified; a leaf that fails is verified afresh (and fails) every time. The memo is one
//! per process, shared by every engine in it, and is emptied when it holds
//! [`CAPACITY`] leaves.
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use kith_crypto::certificate::VerifiedDevice;
use kith_crypto::mls::openmls::prelude::{Credential, SignaturePublicKey};
use kith_crypto::mls::verify_leaf_credential;

/// How many verified leaves the memo keeps before it starts afresh.
const CAPACITY: usize = 4096;

fn memo() -> &'static Mutex<HashMap<Vec<u8>, VerifiedDevice>> {
    static MEMO: OnceLock<Mutex<HashMap<Vec<u8>, VerifiedDevice>>> = OnceLock::new();
    MEMO.get_or_init(Mutex::default)
}

/// The memo's key: the credential's type and content, and the leaf's signature key, each
/// length-prefixed so that no two inputs share a key.
fn key(credential: &Credential, leaf_key: &SignaturePublicKey) -> Vec<u8> {
    let content = credential.serialized_content();
    let signature_key = leaf_key.as_slice();
    let mut key = Vec::with_capacity(content.len() + signature_key.len() + 18);
    key.extend(u16::from(credential.credential_type()).to_be_bytes());
    key.extend((content.len() as u64).to_be_bytes());
    key.extend(content);
    key.extend((signature_key.len() as u64).to_be_bytes());
    key.extend(signature_key);
    key
}

/// The device a leaf's credential certifies, if its certificate verifies and names the
/// leaf's signature key (as [`verify_leaf_credential`] with no expected identity).
pub(crate) fn verified_leaf(
    credential: &Credential,
    leaf_key: &SignaturePublicKey,
) -> Option<VerifiedDevice> {
    let key = key(credential, leaf_key);
    // A poisoned memo only means another thread panicked while inserting: its entries
    // are each still a verified leaf.
    let lock = |m: &'static Mutex<_>| m.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(device) = lock(memo()).get(&key) {
        return Some(device.clone());
    }
    let device = verify_leaf_credential(credential, leaf_key, None).ok()?;
    let mut memo = lock(memo());
    if memo.len() >= CAPACITY {
        memo.clear();
    }
    memo.insert(key, device.clone());
    Some(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_crypto::certificate::{DeviceCertificate, DeviceId};
    use kith_crypto::identity::IdentityKey;
    use kith_crypto::mls::openmls::prelude::BasicCredential;
    use kith_crypto::mls::DeviceSigningKey;
    use rand::SeedableRng;

    fn leaf(seed: u64) -> (Credential, SignaturePublicKey) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let identity = IdentityKey::generate(&mut rng);
        let signer = DeviceSigningKey::generate(&mut rng);
        let certificate = DeviceCertificate::issue(
            &identity,
            DeviceId::generate(&mut rng),
            signer.public_key(),
            "d@relay.example",
            1_700_000_000,
        )
        .expect("certificate");
        let credential = BasicCredential::new(certificate.encode()).into();
        (
            credential,
            SignaturePublicKey::from(signer.public_key().to_vec()),
        )
    }

    #[test]
    fn a_leaf_that_verified_is_answered_from_the_memo_alike() {
        let (credential, key) = leaf(1);
        let first = verified_leaf(&credential, &key).expect("verifies");
        assert_eq!(verified_leaf(&credential, &key), Some(first.clone()));
        assert_eq!(
            first,
            verify_leaf_credential(&credential, &key, None).unwrap()
        );
    }

    #[test]
    fn a_leaf_under_another_key_fails_even_after_its_credential_verified() {
        let (credential, key) = leaf(2);
        let (_, other_key) = leaf(3);
        assert!(verified_leaf(&credential, &key).is_some());
        assert_eq!(verified_leaf(&credential, &other_key), None);
        let mut tampered = credential.serialized_content().to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let tampered: Credential = BasicCredential::new(tampered).into();
        assert_eq!(verified_leaf(&tampered, &key), None);
    }
}
