//! Admin roles: only admin devices commit adds and removals.
//!
//! Admins are application state, as the group name is (`docs/groups.md`, "Admins"). The
//! creator is the first admin; an admin makes other member devices admins with a
//! [`Content::MakeAdmin`] message. Each device keeps every grant it has seen as (granter,
//! grantee), and its roots: the creator, or for a device that joined from a Welcome the
//! device that added it (which every member had to accept as an admin for the add to stand).
//! The admins are the roots and everyone reachable from them through grants, so the set does
//! not depend on the order in which grants arrive. An adder re-sends its whole admin set to
//! newcomers. A commit that adds or removes whose committer is not (yet) an admin here is
//! held, and tried again whenever a grant arrives: a grant and a commit it authorises may
//! arrive in either order, and every device must end up judging the commit the same way.
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;
use kith_crypto::mls::openmls::prelude::{MlsMessageIn, StagedCommit};
use rand::{CryptoRng, RngCore};
use rusqlite::{params, Connection};

use super::commands::{hash, load, members_of};
use super::errors::{malformed, GroupError};
use super::{GroupEngine, GroupId, Output};
use crate::content::{AppMessage, Content, MessageId};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kith_admin_roots (
    group_id BLOB NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (group_id, address)
);
CREATE TABLE IF NOT EXISTS kith_admin_grants (
    group_id BLOB NOT NULL,
    granter TEXT NOT NULL,
    grantee TEXT NOT NULL,
    PRIMARY KEY (group_id, granter, grantee)
);
CREATE TABLE IF NOT EXISTS kith_held_commits (
    group_id BLOB NOT NULL,
    hash BLOB NOT NULL,
    message BLOB NOT NULL,
    PRIMARY KEY (group_id, hash)
);
";

/// The admin tables, for `forget_group`.
pub(crate) const TABLES: [&str; 3] = ["kith_admin_roots", "kith_admin_grants", "kith_held_commits"];

/// Creates the admin tables (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// Records a device this device takes as an admin without a grant (creator, or adder).
pub(crate) fn add_root(db: &Connection, group: &GroupId, address: &str) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR IGNORE INTO kith_admin_roots (group_id, address) VALUES (?1, ?2)",
        params![group.0, address],
    )?;
    Ok(())
}

/// Records grants from `granter`; true if any is new.
pub(crate) fn add_grants(
    db: &Connection,
    group: &GroupId,
    granter: &str,
    grantees: &[String],
) -> Result<bool, GroupError> {
    let mut new = false;
    for grantee in grantees {
        new |= db.execute(
            "INSERT OR IGNORE INTO kith_admin_grants (group_id, granter, grantee)
             VALUES (?1, ?2, ?3)",
            params![group.0, granter, grantee],
        )? == 1;
    }
    Ok(new)
}

/// The group's admins as this device knows them, sorted.
pub(crate) fn admins(db: &Connection, group: &GroupId) -> Result<Vec<String>, GroupError> {
    let mut stmt = db.prepare(
        "WITH RECURSIVE admins(address) AS (
             SELECT address FROM kith_admin_roots WHERE group_id = ?1
             UNION
             SELECT g.grantee FROM kith_admin_grants g JOIN admins a ON g.granter = a.address
             WHERE g.group_id = ?1
         ) SELECT address FROM admins ORDER BY address",
    )?;
    let rows = stmt.query_map(params![group.0], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `address` is an admin of the group as this device knows it.
pub(crate) fn is_admin(
    db: &Connection,
    group: &GroupId,
    address: &str,
) -> Result<bool, GroupError> {
    Ok(admins(db, group)?.iter().any(|a| a == address))
}

/// Whether a commit changes membership (and so needs an admin behind it).
pub(crate) fn needs_admin(staged: &StagedCommit) -> bool {
    staged.add_proposals().next().is_some() || staged.remove_proposals().next().is_some()
}

/// Keeps a commit whose committer is not an admin here (yet).
pub(crate) fn hold(
    db: &Connection,
    group: &GroupId,
    hash: &[u8],
    message: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR IGNORE INTO kith_held_commits (group_id, hash, message) VALUES (?1, ?2, ?3)",
        params![group.0, hash, message],
    )?;
    Ok(())
}

/// Takes every held commit of the group (they are held again if still unauthorised).
fn take_held(db: &Connection, group: &GroupId) -> Result<Vec<Vec<u8>>, GroupError> {
    let mut stmt =
        db.prepare("SELECT message FROM kith_held_commits WHERE group_id = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map(params![group.0], |r| r.get::<_, Vec<u8>>(0))?;
    let held: Vec<Vec<u8>> = rows.collect::<Result<_, _>>()?;
    db.execute(
        "DELETE FROM kith_held_commits WHERE group_id = ?1",
        params![group.0],
    )?;
    Ok(held)
}

impl GroupEngine {
    /// Makes member devices admins (this device must be one). The grant is an application
    /// message, so every member learns it exactly once, whatever the order.
    pub fn make_admin(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        group: &GroupId,
        addresses: Vec<String>,
    ) -> Result<Output, GroupError> {
        self.require_admin_over(db, group, &addresses)?;
        add_grants(db, group, &self.address, &addresses)?;
        Ok(self
            .send(db, now, rng, group, Content::MakeAdmin { addresses })?
            .1)
    }

    /// The group's admin devices (delivery addresses), as this device knows them.
    pub fn admins(&self, db: &Connection, group: &GroupId) -> Result<Vec<String>, GroupError> {
        load(&self.provider(db), group)?;
        admins(db, group)
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
        if is_admin(db, group, &self.address)? {
            Ok(())
        } else {
            Err(GroupError::NotAdmin)
        }
    }

    /// Sends our whole admin set as a grant from us (after an add, so newcomers learn it).
    /// Its id is derived from the epoch and the set, so the same re-send is shown once.
    pub(crate) fn resend_admins(
        &self,
        db: &Connection,
        group: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let provider = self.provider(db);
        let epoch = load(&provider, group)?.epoch().as_u64();
        let addresses = admins(db, group)?;
        let mut seed = format!("admins:{epoch}:{}", self.address).into_bytes();
        seed.extend(addresses.join(",").into_bytes());
        let digest = hash(&provider, &seed)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let message = AppMessage {
            id: MessageId(id),
            sent_at: 0,
            content: Content::MakeAdmin { addresses },
        };
        // Remembered like any message we send: re-sent if fork choice drops its epoch.
        out.outgoing.push(self.encrypt(db, group, &message, true)?);
        Ok(())
    }

    /// A grant arrived from `granter`: record it and, if it changed anything, try the held
    /// commits again.
    pub(crate) fn apply_grant(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
        granter: &str,
        addresses: &[String],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let was_admin = is_admin(db, group, &self.address)?;
        if !add_grants(db, group, granter, addresses)? {
            return Ok(());
        }
        // What we learned may be news to members who joined after the grant was sent.
        if is_admin(db, group, &self.address)? {
            self.resend_admins(db, group, out)?;
        }
        if !was_admin && is_admin(db, group, &self.address)? {
            // Answer the leave requests seen while we could not.
            let provider = self.provider(db);
            let mls_group = load(&provider, group)?;
            let members = members_of(&mls_group);
            for address in super::removal::leave_requests(db, group)? {
                if members.iter().any(|m| m.address == address) {
                    self.schedule_leave(db, now, &mls_group, group, &address)?;
                }
            }
            self.run_intents(db, now, group, out)?;
        }
        for bytes in take_held(db, group)? {
            if !super::store::is_member_group(db, group)? {
                break;
            }
            let message =
                MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).map_err(malformed)?;
            let protocol = message.try_into_protocol_message().map_err(malformed)?;
            self.receive_commit(db, now, &bytes, protocol, group, out)?;
        }
        Ok(())
    }
}
