//! What the engine reports about its state: members, epochs, envelope keys, names; and
//! KeyPackages to publish.
use kith_crypto::mls::openmls::prelude::tls_codec::Serialize as _;
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{epoch_id, new_key_package};
use rusqlite::{params, Connection, OptionalExtension};

use super::commands::{load, members_of};
use super::errors::{malformed, mls, GroupError};
use super::store;
use super::{EpochKey, GroupEngine, GroupId, MemberInfo};

impl GroupEngine {
    /// Makes `count` fresh KeyPackages (TLS-serialized) to publish to contacts.
    ///
    /// They carry the last-resort extension so that openmls keeps their private keys after a
    /// join: when fork choice drops the commit that added us, the re-issued add brings a
    /// second Welcome for the same package. The engine deletes a used package itself once
    /// the group is [`super::HORIZON`] epochs past the join.
    pub fn key_packages(&self, db: &Connection, count: usize) -> Result<Vec<Vec<u8>>, GroupError> {
        let provider = self.provider(db);
        (0..count)
            .map(|_| {
                let bundle = new_key_package(&provider, &self.signer, &self.certificate, true)
                    .map_err(mls)?;
                bundle
                    .key_package()
                    .tls_serialize_detached()
                    .map_err(malformed)
            })
            .collect()
    }

    /// The envelope keys to try on incoming group envelopes: every group's current epoch,
    /// the retained past epochs, and the epoch of a past membership
    /// (`past_membership.rs`).
    pub fn epoch_keys(&self, db: &Connection) -> Result<Vec<EpochKey>, GroupError> {
        let mut stmt = db.prepare(
            "SELECT group_id, epoch, envelope_key FROM kith_epochs
             UNION ALL SELECT group_id, epoch, envelope_key FROM kith_past_memberships
             ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (group, epoch, key) = row?;
            if let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) {
                keys.push(EpochKey {
                    group: GroupId(group),
                    epoch: epoch as u64,
                    key: zeroize::Zeroizing::new(key),
                });
            }
        }
        Ok(keys)
    }

    /// The group's members, sorted by address.
    pub fn members(&self, db: &Connection, group: &GroupId) -> Result<Vec<MemberInfo>, GroupError> {
        Ok(members_of(&load(&self.provider(db), group)?))
    }

    /// The group's current epoch and epoch id.
    pub fn epoch(&self, db: &Connection, group: &GroupId) -> Result<(u64, [u8; 32]), GroupError> {
        let provider = self.provider(db);
        let g = load(&provider, group)?;
        Ok((g.epoch().as_u64(), epoch_id(&g, provider.crypto())?))
    }

    /// The epochs of the group's current branch this device still records (the last
    /// [`super::DETECT_EPOCHS`]), oldest first, each with its epoch id.
    pub fn epoch_history(
        &self,
        db: &Connection,
        group: &GroupId,
    ) -> Result<Vec<(u64, [u8; 32])>, GroupError> {
        let mut stmt = db.prepare(
            "SELECT epoch, epoch_id FROM kith_epochs WHERE group_id = ?1 ORDER BY epoch",
        )?;
        let rows = stmt.query_map(params![group.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut history = Vec::new();
        for row in rows {
            let (epoch, id) = row?;
            if let Ok(id) = <[u8; 32]>::try_from(id.as_slice()) {
                history.push((epoch as u64, id));
            }
        }
        Ok(history)
    }

    /// The group's current name.
    pub fn group_name(&self, db: &Connection, group: &GroupId) -> Result<String, GroupError> {
        db.query_row(
            "SELECT name FROM kith_groups WHERE group_id = ?1",
            params![group.0],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(GroupError::UnknownGroup)
    }

    /// Every group this device is in.
    pub fn groups(&self, db: &Connection) -> Result<Vec<GroupId>, GroupError> {
        let mut stmt = db.prepare_cached(
            "SELECT group_id FROM kith_groups
             WHERE group_id NOT IN (SELECT group_id FROM kith_removed) ORDER BY group_id",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.map(|r| r.map(GroupId)).collect::<Result<_, _>>()?)
    }

    /// Keeps an envelope that none of [`GroupEngine::epoch_keys`] opens (it may be for an
    /// epoch or branch this device has not reached); it comes back in [`Output::reopen`]
    /// after each change of epoch keys.
    pub fn stash(&self, db: &Connection, now: u64, envelope: &[u8]) -> Result<(), GroupError> {
        store::stash(db, now, envelope)?;
        Ok(())
    }

    /// When [`GroupEngine::handle_timeout`] next has something to do, if ever.
    pub fn poll_timeout(&self, db: &Connection) -> Result<Option<u64>, GroupError> {
        let next: Option<i64> = db.query_row(
            "SELECT MIN(not_before) FROM kith_intents WHERE commit_hash IS NULL
             AND not_before < ?1 AND group_id NOT IN (SELECT group_id FROM kith_removed)",
            [super::store::AWAITING_ADMIN],
            |r| r.get(0),
        )?;
        Ok(next.map(|t| t.max(0) as u64))
    }
}

impl GroupEngine {
    /// Forgets this device's copies of its own sent messages `ids` (kept for re-sending if
    /// fork choice drops their epoch), so the text of a deleted message leaves the disk. A
    /// forgotten message is not re-sent; its deletion, which is re-sent, covers that.
    pub fn forget_sent(
        &self,
        db: &Connection,
        group: &GroupId,
        ids: &[crate::content::MessageId],
    ) -> Result<(), GroupError> {
        let mut stmt =
            db.prepare_cached("DELETE FROM kith_sent WHERE group_id = ?1 AND message_id = ?2")?;
        for id in ids {
            stmt.execute(params![group.0, &id.0[..]])?;
        }
        Ok(())
    }
}
