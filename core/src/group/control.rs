//! What the engine's control frames outside MLS (`RejoinRequest`, `BranchLost`,
//! `ForkNotice`) share: a size-capped JSON decoder and the lookup of the member that
//! signed one.
use kith_crypto::certificate::DeviceCertificate;
use kith_crypto::mls::openmls::prelude::{BasicCredential, MlsGroup, OpenMlsProvider as _};
use kith_crypto::mls::{verify_control, KithProvider};
use rusqlite::Connection;
use serde::de::DeserializeOwned;

use super::errors::GroupError;
use super::{store, GroupId};

/// Parses a control frame from the network: `None` if it is longer than `max` or not `T`.
pub(crate) fn decode_capped<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Option<T> {
    if bytes.len() > max {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// Whether we hold the group and no commit has (tentatively) removed us: only then does a
/// control frame about it mean anything.
pub(crate) fn holds_active(db: &Connection, group: &GroupId) -> Result<bool, GroupError> {
    Ok(store::is_member_group(db, group)? && super::removal::removed_parent(db, group)?.is_none())
}

/// The delivery address of the member whose leaf key `key` signed `signed` under `context`:
/// `None` unless the key is a member's leaf key, its certificate verifies, and so does the
/// signature.
pub(crate) fn signer_of(
    group: &MlsGroup,
    key: &[u8],
    context: &str,
    signed: &[u8],
    signature: &[u8],
) -> Option<String> {
    let address = member_with_key(group, key)?;
    verify_control(key, context, signed, signature).then_some(address)
}

/// The signer of a control frame that carries its sender's `certificate`: a member of our
/// tree ([`signer_of`]), or else one of our `admins` that our branch may have removed since
/// (a fork notice or branch-lost frame from it; seeds 6476, 6229), known by the certificate.
pub(crate) fn trusted_signer(
    group: &MlsGroup,
    admins: &[String],
    certificate: &[u8],
    key: &[u8],
    context: &str,
    signed: &[u8],
    signature: &[u8],
) -> Option<String> {
    signer_of(group, key, context, signed, signature)
        .or_else(|| admin_signer(admins, certificate, key, context, signed, signature))
}

/// The address of the device whose `certificate` verifies and names `key`, if it is one of
/// `admins` and the signature verifies.
fn admin_signer(
    admins: &[String],
    certificate: &[u8],
    key: &[u8],
    context: &str,
    signed: &[u8],
    signature: &[u8],
) -> Option<String> {
    let device = DeviceCertificate::decode(certificate)
        .ok()?
        .verify(None)
        .ok()?;
    let named = device.device_signature_key[..] == *key;
    (named
        && admins.contains(&device.delivery_address)
        && verify_control(key, context, signed, signature))
    .then_some(device.delivery_address)
}

/// Deletes the group's openmls state (if it still loads) and everything the engine keeps
/// about it: we are out of it.
pub(crate) fn drop_group(
    provider: &KithProvider<'_>,
    db: &Connection,
    group: &GroupId,
) -> Result<(), GroupError> {
    if let Ok(mut state) = super::commands::load(provider, group) {
        state
            .delete(provider.storage())
            .map_err(super::errors::mls)?;
    }
    store::forget_group(db, group)?;
    super::past_membership::forget(db, group)
}

fn member_with_key(group: &MlsGroup, key: &[u8]) -> Option<String> {
    group
        .members()
        .find(|m| m.signature_key == key)
        .and_then(|m| BasicCredential::try_from(m.credential).ok())
        .and_then(|c| DeviceCertificate::decode(c.identity()).ok())
        .and_then(|c| c.verify(None).ok())
        .map(|d| d.delivery_address)
}
