//! Admin roles: only admin devices commit adds, removals and grants.
//!
//! The admin list lives in the group context, in the private-use extension
//! [`ADMINS_EXTENSION_TYPE`] (`docs/groups.md`, "Admins"), so it is part of every epoch: it
//! forks and rolls back with the commit chain, a Welcome carries it to newcomers, and every
//! member judges a commit against the list of the commit's *parent* epoch — which all
//! members of that epoch hold alike, whatever order frames arrived in. The creator is the
//! first admin; an admin makes other member devices admins with a commit that carries a
//! GroupContextExtensions proposal ([`GroupEngine::make_admin`]). Admins are never demoted:
//! a context change may only add member devices to the list and change nothing else.
//!
//! This replaced grants as application messages (kept per device, with commits from
//! not-yet-known admins held until a grant arrived): those did not roll back with forks,
//! and a commit held for a grant that travelled on another branch split the group
//! (simulator seeds 103, 389, 472; `docs/decisions.md`).
use kith_crypto::mls::openmls::prelude::{
    Extension, ExtensionType, Extensions, GroupContext, MlsGroup, MlsMessageOut,
    OpenMlsProvider as _, Proposal, RequiredCapabilitiesExtension, StagedCommit, UnknownExtension,
};
use kith_crypto::mls::{KithProvider, ADMINS_EXTENSION_TYPE};
use rusqlite::Connection;

use super::commands::{load, members_of};
use super::errors::{mls, GroupError};
use super::{GroupEngine, GroupId, Output};

/// The most admins a list may hold (a decoder refuses longer lists).
pub const MAX_ADMINS: usize = 4096;

/// The longest delivery address an admin list may hold, in bytes.
pub const MAX_ADDRESS_LEN: usize = 320;

const VERSION: u8 = 1;

/// Encodes an admin list: version 1, a zero byte, a big-endian u16 count, then each address
/// as a big-endian u16 length and its UTF-8 bytes, sorted and without repeats.
pub fn encode_admins(admins: &[String]) -> Vec<u8> {
    let mut sorted: Vec<&String> = admins.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out = vec![VERSION, 0];
    out.extend((sorted.len() as u16).to_be_bytes());
    for address in sorted {
        out.extend((address.len() as u16).to_be_bytes());
        out.extend(address.as_bytes());
    }
    out
}

/// Decodes an admin list; `None` unless it is exactly what [`encode_admins`] writes
/// (sorted, no repeats, at most [`MAX_ADMINS`] addresses of at most [`MAX_ADDRESS_LEN`]).
pub fn decode_admins(bytes: &[u8]) -> Option<Vec<String>> {
    let (header, mut rest) = bytes.split_at_checked(4)?;
    if header[0] != VERSION || header[1] != 0 {
        return None;
    }
    let count = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if count > MAX_ADMINS {
        return None;
    }
    let mut admins: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, tail) = rest.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len > MAX_ADDRESS_LEN {
            return None;
        }
        let (address, tail) = tail.split_at_checked(len)?;
        let address = std::str::from_utf8(address).ok()?.to_owned();
        if admins.last().is_some_and(|last| *last >= address) {
            return None;
        }
        admins.push(address);
        rest = tail;
    }
    rest.is_empty().then_some(admins)
}

/// The admins a group context lists (none if the extension is missing or malformed).
pub(crate) fn admins_in(extensions: &Extensions<GroupContext>) -> Vec<String> {
    extensions
        .unknown(ADMINS_EXTENSION_TYPE)
        .and_then(|extension| decode_admins(&extension.0))
        .unwrap_or_default()
}

/// The admins of the group's current epoch.
pub(crate) fn admins_of(group: &MlsGroup) -> Vec<String> {
    admins_in(group.extensions())
}

/// A new group's context extensions: `creator` as the only admin, and the admin list's
/// type among the required capabilities (openmls accepts a later context change only for
/// extension types listed there).
pub(crate) fn initial_context(creator: &str) -> Result<Extensions<GroupContext>, GroupError> {
    let required = RequiredCapabilitiesExtension::new(
        &[ExtensionType::Unknown(ADMINS_EXTENSION_TYPE)],
        &[],
        &[],
    );
    let extensions = Extensions::single(Extension::RequiredCapabilities(required)).map_err(mls)?;
    with_admins(&extensions, &[creator.to_owned()])
}

/// `extensions` with the admin list replaced by `admins`.
pub(crate) fn with_admins(
    extensions: &Extensions<GroupContext>,
    admins: &[String],
) -> Result<Extensions<GroupContext>, GroupError> {
    let mut extensions = extensions.clone();
    extensions
        .add_or_replace(Extension::Unknown(
            ADMINS_EXTENSION_TYPE,
            UnknownExtension(encode_admins(admins)),
        ))
        .map_err(mls)?;
    Ok(extensions)
}

/// Whether a commit needs an admin behind it: it adds, removes or changes the context.
pub(crate) fn needs_admin(staged: &StagedCommit) -> bool {
    staged.add_proposals().next().is_some()
        || staged.remove_proposals().next().is_some()
        || changes_context(staged)
}

/// Whether a commit brings devices that may answer a leave request sent before it: new
/// members (adds, re-adds) or new admins (a context change).
pub(crate) fn brings_answerers(staged: &StagedCommit) -> bool {
    staged.add_proposals().next().is_some() || changes_context(staged)
}

fn changes_context(staged: &StagedCommit) -> bool {
    staged
        .queued_proposals()
        .any(|p| matches!(p.proposal(), Proposal::GroupContextExtensions(_)))
}

/// Checks an incoming commit against its parent epoch `parent`: a commit that needs an
/// admin must come from one listed there, and a context change may only add member devices
/// of the parent epoch to the admin list.
pub(crate) fn authorise(
    parent: &MlsGroup,
    staged: &StagedCommit,
    committer: Option<&str>,
) -> Result<(), GroupError> {
    if !needs_admin(staged) {
        return Ok(());
    }
    let admins = admins_of(parent);
    if !committer.is_some_and(|c| admins.iter().any(|a| a == c)) {
        return Err(GroupError::NotAdmin);
    }
    if !changes_context(staged) {
        return Ok(());
    }
    let new = staged.group_context().extensions();
    let granted = admins_in(new);
    let members = members_of(parent);
    let grows = admins.iter().all(|a| granted.contains(a))
        && granted
            .iter()
            .all(|a| admins.contains(a) || members.iter().any(|m| &m.address == a));
    if !grows || *new != with_admins(parent.extensions(), &granted)? {
        return Err(GroupError::ForbiddenContextChange);
    }
    Ok(())
}

impl GroupEngine {
    /// Makes member devices admins (this device must be one): a commit that adds them to
    /// the admin list in the group context, re-issued if fork choice drops it.
    pub fn make_admin(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
        addresses: Vec<String>,
    ) -> Result<Output, GroupError> {
        self.require_admin_over(db, group, &addresses)?;
        self.issue(
            db,
            now,
            group,
            vec![super::intents::Intent::Grant { addresses }],
        )
    }

    /// The group's admin devices (delivery addresses) in its current epoch, sorted.
    pub fn admins(&self, db: &Connection, group: &GroupId) -> Result<Vec<String>, GroupError> {
        Ok(admins_of(&load(&self.provider(db), group)?))
    }

    /// Whether `address` is an admin in the group's current epoch here.
    pub(crate) fn is_admin(
        &self,
        db: &Connection,
        group: &GroupId,
        address: &str,
    ) -> Result<bool, GroupError> {
        Ok(self.admins(db, group)?.iter().any(|a| a == address))
    }

    /// Checks a membership command on `addresses`: at least one, this device an admin, and
    /// every address a member device.
    pub(crate) fn require_admin_over(
        &self,
        db: &Connection,
        group: &GroupId,
        addresses: &[String],
    ) -> Result<(), GroupError> {
        if addresses.is_empty() {
            return Err(GroupError::EmptyInput);
        }
        self.require_admin(db, group)?;
        let members = members_of(&load(&self.provider(db), group)?);
        if addresses
            .iter()
            .any(|a| !members.iter().any(|m| &m.address == a))
        {
            return Err(GroupError::UnknownMember);
        }
        Ok(())
    }

    /// Fails with [`GroupError::NotAdmin`] unless this device is an admin of the group.
    pub(crate) fn require_admin(&self, db: &Connection, group: &GroupId) -> Result<(), GroupError> {
        if self.is_admin(db, group, &self.address)? {
            Ok(())
        } else {
            Err(GroupError::NotAdmin)
        }
    }

    /// A commit that adds those of `addresses` that are members and not yet admins to the
    /// admin list, staged as our pending commit; `None` when there is nobody to add.
    pub(crate) fn grant_commit(
        &self,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        addresses: &[String],
    ) -> Result<Option<MlsMessageOut>, GroupError> {
        let mut admins = admins_of(group);
        let members = members_of(group);
        let before = admins.len();
        for address in addresses {
            if members.iter().any(|m| &m.address == address) && !admins.contains(address) {
                admins.push(address.clone());
            }
        }
        if admins.len() == before {
            return Ok(None);
        }
        let extensions = with_admins(group.extensions(), &admins)?;
        let bundle = group
            .commit_builder()
            .propose_group_context_extensions(extensions)
            .map_err(mls)?
            .load_psks(provider.storage())
            .map_err(mls)?
            .build(provider.rand(), provider.crypto(), &self.signer, |_| true)
            .map_err(mls)?
            .stage_commit(provider)
            .map_err(mls)?;
        Ok(Some(bundle.into_commit()))
    }

    /// After a merge that made this device an admin: plan answers to the leave requests it
    /// saw while it could not commit them (run when they fall due).
    pub(crate) fn answer_leave_requests(
        &self,
        db: &Connection,
        now: u64,
        group: &MlsGroup,
        gid: &GroupId,
    ) -> Result<(), GroupError> {
        let members = members_of(group);
        for address in super::removal::leave_requests(db, gid)? {
            if members.iter().any(|m| m.address == address) {
                self.schedule_leave(db, now, group, gid, &address)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn admin_lists_round_trip(list in proptest::collection::vec("[a-z0-9@.]{0,40}", 0..20)) {
            let encoded = encode_admins(&list);
            let mut expected = list.clone();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(decode_admins(&encoded), Some(expected));
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_admins(&bytes);
        }
    }

    #[test]
    fn unsorted_repeated_or_trailing_lists_are_refused() {
        let two = encode_admins(&["a@x".into(), "b@x".into()]);
        let mut swapped = vec![VERSION, 0, 0, 2, 0, 3];
        swapped.extend(b"b@x");
        swapped.extend([0, 3]);
        swapped.extend(b"a@x");
        assert_eq!(decode_admins(&swapped), None);
        let mut repeated = vec![VERSION, 0, 0, 2, 0, 3];
        repeated.extend(b"a@x");
        repeated.extend([0, 3]);
        repeated.extend(b"a@x");
        assert_eq!(decode_admins(&repeated), None);
        let mut trailing = two.clone();
        trailing.push(0);
        assert_eq!(decode_admins(&trailing), None);
        assert_eq!(decode_admins(&two[..two.len() - 1]), None);
        assert_eq!(decode_admins(&[2, 0, 0, 0]), None);
    }
}
