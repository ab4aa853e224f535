//! Network helpers for admin roles and beyond-horizon repair.
use kith_core::group::{GroupError, GroupId};

use super::Network;

impl Network {
    /// Device `i` makes devices `who` admins.
    pub fn make_admin(&mut self, i: usize, group: &GroupId, who: &[usize]) {
        self.try_make_admin(i, group, who).expect("make admin");
    }

    pub fn try_make_admin(
        &mut self,
        i: usize,
        group: &GroupId,
        who: &[usize],
    ) -> Result<(), GroupError> {
        let addresses = who.iter().map(|&j| self.nodes[j].address.clone()).collect();
        self.call(i, |e, db, now, rng| {
            Ok(((), e.make_admin(db, now, rng, group, addresses)?))
        })
    }

    pub fn try_remove(
        &mut self,
        i: usize,
        group: &GroupId,
        who: &[usize],
    ) -> Result<(), GroupError> {
        let addresses = who.iter().map(|&j| self.nodes[j].address.clone()).collect();
        self.call(i, |e, db, now, _| {
            Ok(((), e.remove_devices(db, now, group, addresses)?))
        })
    }

    /// The admins device `i` knows, as device indices.
    pub fn admins(&self, i: usize, group: &GroupId) -> Vec<usize> {
        let node = &self.nodes[i];
        let admins = node.engine.admins(&node.conn, group).expect("admins");
        (0..self.nodes.len())
            .filter(|&j| admins.contains(&self.nodes[j].address))
            .collect()
    }

    /// Makes device `i` believe it is an admin without any grant (a misbehaving device).
    pub fn self_appoint(&mut self, i: usize, group: &GroupId) {
        let address = self.nodes[i].address.clone();
        self.nodes[i]
            .conn
            .execute(
                "INSERT INTO kith_admin_roots (group_id, address) VALUES (?1, ?2)",
                rusqlite::params![group.0, address],
            )
            .expect("insert root");
    }

    pub fn identity(&self, i: usize) -> kith_crypto::identity::IdentityPublicKey {
        self.nodes[i].identity.public_key()
    }

    pub fn errors(&self, i: usize) -> &[String] {
        &self.nodes[i].errors
    }
}
