//! Past memberships: what a device removed and re-added can still read of its first
//! membership (simulator seed 9857).
//!
//! A device added, removed and added again holds the state of the Welcome it took last.
//! Messages sent while it was first a member may reach it after that, sealed for an epoch
//! its state never had. So the state of that first membership is kept beside the current
//! one, read-only, as the group's past membership:
//! - when a Welcome replaces our state, and the new chain keeps the last epoch we were a
//!   member in (our epoch, or the parent of the commit that removed us, whose snapshot
//!   we hold);
//! - when the Welcomes came newest first: a stale Welcome for an epoch before ours whose
//!   chain is ours (the same commit wherever both chains know one, and the same hash for
//!   the add that made it) is opened into it.
//!
//! Its openmls rows live in the snapshot tables under a slot of their own and are swapped
//! in, inside the caller's transaction, only to decrypt an application message of its
//! epoch or before, which our current state could not; its envelope key is one of
//! [`GroupEngine::epoch_keys`]. It commits nothing, sends nothing and applies no commit,
//! so a device still decrypts nothing sent after its removal. One is kept per group (the
//! latest); it is dropped when its epoch leaves [`DETECT_EPOCHS`], when a fork moves our
//! chain off it, and with the group.
//!
//! [`DETECT_EPOCHS`]: super::DETECT_EPOCHS
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{epoch_id, export_epoch_key, EpochExport};
use rusqlite::{params, Connection, OptionalExtension};

use super::commands::{held_epoch, load};
use super::errors::{unless_rolled_back, GroupError};
use super::lineage::{self, Lineage};
use super::snapshot;
use super::store;
use super::{GroupEngine, GroupId, Output};
use crate::content::Content;

/// Creates the table of past memberships (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_past_memberships (
             group_id BLOB PRIMARY KEY,
             epoch INTEGER NOT NULL,
             epoch_id BLOB NOT NULL,
             envelope_key BLOB NOT NULL
         );",
    )?;
    Ok(())
}

/// The table of past memberships: one row per group, with the epoch's id and envelope key.
const TABLE: &str = "kith_past_memberships";

/// The snapshot slot a group's past membership is kept under.
fn past_slot(group: &GroupId) -> Vec<u8> {
    [b"kith-past:".as_slice(), &group.0].concat()
}

/// The snapshot slot the current state waits in while the past one is swapped in.
fn swap_slot(group: &GroupId) -> Vec<u8> {
    [b"kith-swap:".as_slice(), &group.0].concat()
}

/// The epoch of the group's past membership, if one is kept.
fn held(db: &Connection, group: &GroupId) -> Result<Option<u64>, GroupError> {
    Ok(db
        .query_row(
            "SELECT epoch FROM kith_past_memberships WHERE group_id = ?1",
            params![group.0],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|epoch| epoch as u64))
}

/// Forgets the group's past membership and its rows.
pub(crate) fn forget(db: &Connection, group: &GroupId) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_past_memberships WHERE group_id = ?1",
        params![group.0],
    )?;
    snapshot::drop_slot(db, &past_slot(group))
}

/// Forgets the past membership if its epoch is after `changed_after`, the last epoch our
/// chain keeps when it moves to another branch (`None`: nothing of it is known to stay).
pub(crate) fn forget_if_off_chain(
    db: &Connection,
    group: &GroupId,
    changed_after: Option<u64>,
) -> Result<(), GroupError> {
    match (held(db, group)?, changed_after) {
        (Some(epoch), Some(kept)) if epoch <= kept => Ok(()),
        (Some(_), _) => forget(db, group),
        (None, _) => Ok(()),
    }
}

/// Forgets a past membership whose epoch is older than `oldest` (part of `store::prune`).
pub(crate) fn prune(db: &Connection, group: &GroupId, oldest: u64) -> Result<(), GroupError> {
    match held(db, group)? {
        Some(epoch) if epoch < oldest => forget(db, group),
        _ => Ok(()),
    }
}

/// Whether a stale Welcome for `epoch` with `lineage` is on our chain, before our
/// current epoch: it names the very commits our chain holds, the add that made it
/// included (by hash, so not merely one of the same class).
fn is_past_of_our_chain(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
    current: u64,
    lineage: Option<&Lineage>,
) -> Result<bool, GroupError> {
    let Some(lineage) = lineage else {
        return Ok(false);
    };
    let Some(add) = lineage.entries.last() else {
        return Ok(false);
    };
    let Some(hash) = add.hash else {
        return Ok(false);
    };
    let oldest = current.saturating_sub(super::DETECT_EPOCHS);
    if epoch >= current || epoch < oldest || add.parent + 1 != epoch {
        return Ok(false);
    }
    if held(db, group)?.is_some_and(|held| held >= epoch) {
        return Ok(false);
    }
    Ok(lineage::holds_commit(db, group, add.parent, &hash)?
        && lineage::first_difference(db, group, lineage)?.is_none())
}

/// Runs `work` on the past membership's rows: the group's current rows (at `current`) are
/// set aside and the past ones (at `past`, or none) put in their place. The rows `work`
/// leaves are then kept as the past membership at the epoch it returns (`None`: not
/// kept), and the current rows are put back, whether `work` succeeded or not (unless its
/// error ends the call).
fn with_past_rows<T>(
    db: &Connection,
    gid: &GroupId,
    current: u64,
    past: Option<u64>,
    work: impl FnOnce() -> Result<(T, Option<u64>), GroupError>,
) -> Result<T, GroupError> {
    let (swap_slot, past_slot) = (swap_slot(gid), past_slot(gid));
    snapshot::drop_slot(db, &swap_slot)?;
    snapshot::save_rows(db, gid, &swap_slot, current)?;
    match past {
        Some(epoch) => snapshot::load_rows(db, gid, &past_slot, epoch)?,
        None => snapshot::clear_rows(db, gid)?,
    }
    let result = work();
    if result.as_ref().is_err_and(|error| error.ends_the_call()) {
        // The transaction is failing: it rolls back whole, and nothing more is written.
        return result.map(|(value, _)| value);
    }
    if let Ok((_, Some(epoch))) = &result {
        snapshot::drop_slot(db, &past_slot)?;
        snapshot::save_rows(db, gid, &past_slot, *epoch)?;
    }
    snapshot::load_rows(db, gid, &swap_slot, current)?;
    snapshot::drop_slot(db, &swap_slot)?;
    result.map(|(value, _)| value)
}

impl GroupEngine {
    /// A stale Welcome (its sender and leaves already verified): if it is a past
    /// membership of ours, keep it to read that epoch's messages.
    pub(crate) fn keep_past_membership(
        &self,
        db: &Connection,
        gid: &GroupId,
        epoch: u64,
        lineage: Option<&Lineage>,
        staged: StagedWelcome,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let provider = self.provider(db);
        let current = held_epoch(&provider, gid)?;
        if !is_past_of_our_chain(db, gid, epoch, current, lineage)? {
            return Ok(());
        }
        let opened = with_past_rows(db, gid, current, None, || {
            match staged.into_group(&provider) {
                Ok(group) => {
                    let id = epoch_id(&group, provider.crypto())?;
                    let key =
                        export_epoch_key(&group, provider.crypto(), EpochExport::EnvelopeKey)?;
                    Ok((Some((id, key)), Some(epoch)))
                }
                Err(error) => {
                    let error = unless_rolled_back(db, error)?;
                    tracing::warn!(?error, "a past membership's Welcome did not open");
                    Ok((None, None))
                }
            }
        })?;
        let Some((id, key)) = opened else {
            return Ok(());
        };
        store::record_epoch_in(db, TABLE, gid, epoch, &id, &key)?;
        tracing::debug!(epoch, current, "keeping a past membership");
        // Its messages may have come first and wait in the stash, unopened.
        super::commands::offer_stash(db, out)
    }

    /// We are about to replace our state with a Welcome's for `new_epoch`, whose lineage
    /// first differs from our chain after `fork` (`None`: nowhere; `lineage` false: it has
    /// none): the last epoch we were a member in, if that chain keeps it, becomes the past
    /// membership, so that messages of it still in flight are read. That is our current
    /// epoch, or, if a commit removed us, its parent (from the snapshot taken before it).
    pub(crate) fn keep_replaced_membership(
        &self,
        db: &Connection,
        gid: &GroupId,
        new_epoch: u64,
        lineage: bool,
        fork: Option<u64>,
    ) -> Result<(), GroupError> {
        if !lineage || !store::is_member_group(db, gid)? {
            return Ok(());
        }
        let Ok(group) = load(&self.provider(db), gid) else {
            return Ok(());
        };
        let (epoch, from_snapshot) = match super::removal::removed_parent(db, gid)? {
            Some(parent) if snapshot::has_snapshot(db, gid, parent)? => (parent, true),
            Some(_) => return Ok(()),
            None if group.is_active() => (group.epoch().as_u64(), false),
            None => return Ok(()),
        };
        let off_chain = fork.is_some_and(|fork| fork < epoch);
        if epoch >= new_epoch || off_chain || held(db, gid)?.is_some_and(|held| held >= epoch) {
            return Ok(());
        }
        let Some((id, key)) = store::epoch_record(db, gid, epoch)? else {
            return Ok(());
        };
        forget(db, gid)?;
        let past = past_slot(gid);
        match from_snapshot {
            true => snapshot::copy_saved(db, (&gid.0, epoch), (&past, epoch))?,
            false => snapshot::save_rows(db, gid, &past, epoch)?,
        }
        store::record_epoch_in(db, TABLE, gid, epoch, &id, &key)?;
        tracing::debug!(
            epoch,
            new_epoch,
            "keeping the membership a Welcome replaces"
        );
        Ok(())
    }

    /// An application message our state could not decrypt: if it is for the epoch of our
    /// past membership, decrypt it there and show it (a leave request or a rename of
    /// the past is not acted on: the current state has moved on). Returns whether the
    /// past membership took the message.
    pub(crate) fn receive_past_application(
        &self,
        db: &Connection,
        protocol: ProtocolMessage,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<bool, GroupError> {
        let epoch = protocol.epoch().as_u64();
        let Some(held) = held(db, gid)? else {
            return Ok(false);
        };
        if epoch > held {
            return Ok(false);
        }
        let provider = self.provider(db);
        let current = held_epoch(&provider, gid)?;
        // The ratchet moves on (its keys for this message are deleted): that is kept.
        let processed = with_past_rows(db, gid, current, Some(held), || {
            let processed = load(&provider, gid)?.process_message(&provider, protocol);
            Ok((processed, Some(held)))
        })?;
        let processed = match processed {
            Ok(processed) => processed,
            Err(error) => {
                let error = unless_rolled_back(db, error)?;
                tracing::debug!(?error, "a message of our past membership did not decrypt");
                return Ok(false);
            }
        };
        let Some((device, envelope)) = super::receive::opened_application(processed) else {
            return Ok(true);
        };
        if matches!(
            envelope.message.content,
            Content::LeaveRequest | Content::Rename { .. }
        ) || !store::mark_seen(db, gid, &envelope.message.id.0)?
        {
            return Ok(true);
        }
        tracing::debug!(
            epoch,
            current,
            "application message of a past membership in"
        );
        out.events.push(super::Event::Message {
            group: gid.clone(),
            sender: device.delivery_address,
            identity: device.identity_key,
            message: envelope.message,
        });
        Ok(true)
    }
}
