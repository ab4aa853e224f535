//! What the engine's control frames outside MLS (`RejoinRequest`, `BranchLost`,
//! `ForkNotice`) share: a size-capped JSON decoder and the lookup of the member that
//! signed one.
use kith_crypto::certificate::DeviceCertificate;
use kith_crypto::mls::openmls::prelude::{BasicCredential, MlsGroup};
use serde::de::DeserializeOwned;

/// Parses a control frame from the network: `None` if it is longer than `max` or not `T`.
pub(crate) fn decode_capped<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Option<T> {
    if bytes.len() > max {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// The delivery address of the member whose leaf signature key is `key`, if its certificate
/// verifies.
pub(crate) fn member_with_key(group: &MlsGroup, key: &[u8]) -> Option<String> {
    group
        .members()
        .find(|m| m.signature_key == key)
        .and_then(|m| BasicCredential::try_from(m.credential).ok())
        .and_then(|c| DeviceCertificate::decode(c.identity()).ok())
        .and_then(|c| c.verify(None).ok())
        .map(|d| d.delivery_address)
}
