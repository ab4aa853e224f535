//! Group membership and state seen from the client: leave, rename, members, names.
use rand::rngs::OsRng;
use rusqlite::OptionalExtension;

use super::{Client, ClientError};
use crate::events::ChatId;
use crate::group::{GroupId, MemberInfo};

/// A group as a chat list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group id.
    pub id: GroupId,
    /// Its current name.
    pub name: String,
    /// How many member devices it has.
    pub members: usize,
    /// Its current epoch.
    pub epoch: u64,
}

impl Client {
    /// Asks the group to remove this device; a member commits the removal, after which
    /// [`crate::group::Event::Removed`] arrives and nothing new can be read.
    pub fn leave_group(&self, group: &GroupId) -> Result<(), ClientError> {
        self.command(|tx, now, events| {
            let out = self.engine.leave(tx, now, &mut OsRng, group)?;
            self.apply(tx, now, out, events)
        })
    }

    /// Renames the group for every member (the latest rename by time, then id, wins).
    pub fn rename_group(&self, group: &GroupId, name: &str) -> Result<(), ClientError> {
        self.command(|tx, now, events| {
            let out = self.engine.rename(tx, now, &mut OsRng, group, name)?;
            self.apply(tx, now, out, events)
        })
    }

    /// Makes member devices admins (this device must be one): they may then add and remove.
    pub fn make_admin(&self, group: &GroupId, addresses: &[String]) -> Result<(), ClientError> {
        self.command(|tx, now, events| {
            let out = self.engine.make_admin(tx, now, group, addresses.to_vec())?;
            self.apply(tx, now, out, events)
        })
    }

    /// The group's admin devices (addresses), as this device knows them.
    pub fn admins(&self, group: &GroupId) -> Result<Vec<String>, ClientError> {
        self.transaction(|tx, _| Ok(self.engine.admins(tx, group)?))
    }

    /// The group's member devices, sorted by address.
    pub fn members(&self, group: &GroupId) -> Result<Vec<MemberInfo>, ClientError> {
        self.transaction(|tx, _| Ok(self.engine.members(tx, group)?))
    }

    /// The group of a chat (as events name it), if the chat is a group this device knows.
    pub fn chat_group(&self, chat: ChatId) -> Result<Option<GroupId>, ClientError> {
        self.transaction(|tx, _| {
            Ok(tx
                .query_row(
                    "SELECT group_id FROM chats WHERE id = ?1",
                    [chat.0],
                    |row| row.get::<_, Option<Vec<u8>>>(0),
                )
                .optional()?
                .flatten()
                .map(GroupId))
        })
    }

    /// Every group this device is in, with its name, size and epoch.
    pub fn group_summaries(&self) -> Result<Vec<GroupSummary>, ClientError> {
        self.transaction(|tx, _| {
            let mut out = Vec::new();
            for id in self.engine.groups(tx)? {
                out.push(GroupSummary {
                    name: self.engine.group_name(tx, &id)?,
                    members: self.engine.members(tx, &id)?.len(),
                    epoch: self.engine.epoch(tx, &id)?.0,
                    id,
                });
            }
            Ok(out)
        })
    }
}
