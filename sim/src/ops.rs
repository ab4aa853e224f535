//! Carrying out a schedule's actions on the world.
use kith_core::content::Content;
use kith_core::group::{GroupError, NewDevice};
use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::openmls::prelude::tls_codec::Serialize as _;
use kith_crypto::mls::openmls::prelude::{KeyPackage, Lifetime};
use kith_crypto::mls::{
    begin_immediate, credential_with_key, run_migrations, DeviceSigningKey, KithProvider,
    CIPHERSUITE, SEEDED_KEY_PACKAGE_LIFETIME,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use crate::record::Sent;
use crate::schedule::Action;
use crate::world::{Called, World};

/// How many of the oldest packets in flight a delivery chooses among.
const REORDER_WINDOW: usize = 8;

fn pick<T: Copy>(items: &[T], n: impl Into<u64>) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[(n.into() % items.len() as u64) as usize])
    }
}

impl World {
    /// Carries out one action (skipped when nothing fits it).
    pub(crate) fn act(&mut self, action: &Action) {
        self.now += 1;
        match *action {
            Action::Send { dev } => {
                if let Some(i) = pick(&self.holders(), dev) {
                    self.send(i, false);
                }
            }
            Action::Add { by, who } => {
                let outside = self.outside(false);
                if let (Some(a), Some(j)) = (pick(&self.admins(), by), pick(&outside, who)) {
                    self.add(a, j);
                }
            }
            Action::Link { by, who } => {
                let outside = self.outside(true);
                if let (Some(a), Some(j)) = (pick(&self.admins(), by), pick(&outside, who)) {
                    self.add(a, j);
                }
            }
            Action::Remove { by, who } => self.remove(by, who),
            Action::Leave { dev } => {
                if let Some(i) = pick(&self.holders(), dev) {
                    self.leave(i);
                }
            }
            Action::SelfUpdate { dev } => {
                if let Some(i) = pick(&self.holders(), dev) {
                    self.expect_ok(i, "self-update", |w, g| {
                        w.call(i, |e, db, now, _| Ok(((), e.self_update(db, now, &g)?)))
                    });
                }
            }
            Action::MakeAdmin { by, who } => self.make_admin(by, who),
            Action::NonAdminAdd { dev } => self.non_admin_add(dev),
            Action::ForgedAdd { by } => self.forged_add(by),
            Action::Deliver { count, pick } => self.deliver_some(count, pick),
            Action::Duplicate { pick: p } => {
                if let Some(k) = pick(&(0..self.in_flight.len()).collect::<Vec<_>>(), p) {
                    self.in_flight.push(self.in_flight[k].clone());
                }
            }
            Action::Offline { dev } => {
                let online: Vec<usize> = (0..self.devices.len())
                    .filter(|&i| self.devices[i].online)
                    .collect();
                if let Some(i) = pick(&online, dev) {
                    self.set_online(i, false);
                }
            }
            Action::Online { dev } => {
                let offline: Vec<usize> = (0..self.devices.len())
                    .filter(|&i| !self.devices[i].online)
                    .collect();
                if let Some(i) = pick(&offline, dev) {
                    self.set_online(i, true);
                }
            }
            Action::Crash { dev, after } => {
                let i = (dev as usize) % self.devices.len();
                self.devices[i].crash = Some(i64::from(after));
            }
            Action::Advance { secs } => self.advance(u64::from(secs)),
        }
    }

    fn expect_ok(
        &mut self,
        i: usize,
        what: &str,
        f: impl FnOnce(&mut World, kith_core::group::GroupId) -> Called<()>,
    ) -> bool {
        let group = self.group.clone();
        match f(self, group) {
            Called::Done(()) => true,
            Called::Crashed => false,
            Called::Failed(error) => {
                self.record
                    .violation(format!("device {i}: {what} failed: {error}"));
                false
            }
        }
    }

    /// Devices outside the group; with `linked`, only those whose user has a device inside.
    fn outside(&self, linked: bool) -> Vec<usize> {
        let holders = self.holders();
        (0..self.devices.len())
            .filter(|i| !holders.contains(i))
            .filter(|&i| {
                !linked
                    || holders
                        .iter()
                        .any(|&h| self.devices[h].user == self.devices[i].user)
            })
            .collect()
    }

    /// A member sends a text (or a probe); the send is recorded with its epoch and members.
    pub(crate) fn send(&mut self, i: usize, probe: bool) {
        let d = &self.devices[i];
        let Ok((epoch, epoch_id)) = d.engine.epoch(&d.conn, &self.group) else {
            return;
        };
        let members: Vec<String> = match d.engine.members(&d.conn, &self.group) {
            Ok(m) => m.into_iter().map(|m| m.address).collect(),
            Err(_) => return,
        };
        let views_before = self.record.members_log[i].len();
        let group = self.group.clone();
        let body = format!("m{}", self.step);
        let content = Content::Text {
            body,
            reply_to: None,
        };
        match self.call(i, |e, db, now, rng| e.send(db, now, rng, &group, content)) {
            Called::Done(id) => {
                self.stats.messages += 1;
                self.record.sent.push(Sent {
                    id,
                    sender: i,
                    step: self.step,
                    epoch,
                    epoch_id,
                    members,
                    views_before,
                    probe,
                });
            }
            Called::Crashed => {}
            Called::Failed(error) => self
                .record
                .violation(format!("device {i}: send failed: {error}")),
        }
    }

    fn key_package(&mut self, j: usize) -> Option<Vec<u8>> {
        let d = &self.devices[j];
        let tx = begin_immediate(&d.conn).ok()?;
        let package = d.engine.key_packages(&tx, 1).ok()?.pop()?;
        tx.commit().ok()?;
        Some(package)
    }

    fn add(&mut self, a: usize, j: usize) {
        let Some(key_package) = self.key_package(j) else {
            self.record.violation(format!("device {j}: no KeyPackage"));
            return;
        };
        let device = NewDevice {
            key_package,
            identity: self.identities[self.devices[j].user].public_key(),
        };
        if self.expect_ok(a, "add", |w, g| {
            w.call(a, |e, db, now, _| {
                Ok(((), e.add_devices(db, now, &g, vec![device])?))
            })
        }) {
            self.stats.commits += 1;
            self.record.adds.push((j, self.step));
        }
    }

    fn remove(&mut self, by: u8, who: u8) {
        let Some(a) = pick(&self.admins(), by) else {
            return;
        };
        let d = &self.devices[a];
        let Ok(members) = d.engine.members(&d.conn, &self.group) else {
            return;
        };
        let others: Vec<String> = members
            .into_iter()
            .map(|m| m.address)
            .filter(|m| *m != d.address)
            .collect();
        let Some(target) = pick(&(0..others.len()).collect::<Vec<_>>(), who) else {
            return;
        };
        let address = others[target].clone();
        let Some(j) = self.device_of(&address) else {
            return;
        };
        if self.expect_ok(a, "remove", |w, g| {
            w.call(a, |e, db, now, _| {
                Ok(((), e.remove_devices(db, now, &g, vec![address])?))
            })
        }) {
            self.stats.commits += 1;
            self.record.removes.push((a, j, self.step));
        }
    }

    fn leave(&mut self, i: usize) {
        let d = &self.devices[i];
        let others: Vec<usize> = match d.engine.members(&d.conn, &self.group) {
            Ok(m) => m
                .iter()
                .filter_map(|m| self.device_of(&m.address))
                .filter(|&j| j != i)
                .collect(),
            Err(_) => return,
        };
        if self.expect_ok(i, "leave", |w, g| {
            w.call(i, |e, db, now, rng| Ok(((), e.leave(db, now, rng, &g)?)))
        }) {
            self.record.leaves.push((i, self.step, others));
        }
    }

    fn make_admin(&mut self, by: u8, who: u8) {
        let Some(a) = pick(&self.admins(), by) else {
            return;
        };
        let d = &self.devices[a];
        let Ok(members) = d.engine.members(&d.conn, &self.group) else {
            return;
        };
        let addresses: Vec<String> = members.into_iter().map(|m| m.address).collect();
        let Some(k) = pick(&(0..addresses.len()).collect::<Vec<_>>(), who) else {
            return;
        };
        let target = vec![addresses[k].clone()];
        self.expect_ok(a, "make admin", |w, g| {
            w.call(a, |e, db, now, _| {
                Ok(((), e.make_admin(db, now, &g, target)?))
            })
        });
    }

    fn non_admin_add(&mut self, dev: u8) {
        let admins = self.admins();
        let plain: Vec<usize> = self
            .holders()
            .into_iter()
            .filter(|i| !admins.contains(i))
            .collect();
        let (Some(i), Some(j)) = (pick(&plain, dev), pick(&self.outside(false), dev)) else {
            return;
        };
        let Some(key_package) = self.key_package(j) else {
            return;
        };
        let device = NewDevice {
            key_package,
            identity: self.identities[self.devices[j].user].public_key(),
        };
        let group = self.group.clone();
        match self.call(i, |e, db, now, _| {
            Ok(((), e.add_devices(db, now, &group, vec![device])?))
        }) {
            Called::Failed(GroupError::NotAdmin) | Called::Crashed => {}
            Called::Done(()) => self
                .record
                .violation(format!("non-admin device {i} added a device")),
            Called::Failed(error) => self
                .record
                .violation(format!("non-admin add failed with {error}, not NotAdmin")),
        }
    }

    fn forged_add(&mut self, by: u8) {
        let Some(a) = pick(&self.admins(), by) else {
            return;
        };
        let (key_package, identity) = forged_key_package(&mut self.rng);
        let device = NewDevice {
            key_package,
            identity,
        };
        let group = self.group.clone();
        match self.call(a, |e, db, now, _| {
            Ok(((), e.add_devices(db, now, &group, vec![device])?))
        }) {
            Called::Failed(GroupError::CertificateMismatch(_)) | Called::Crashed => {}
            Called::Done(()) => self
                .record
                .violation(format!("device {a} accepted a forged certificate")),
            Called::Failed(error) => self.record.violation(format!(
                "forged add failed with {error}, not CertificateMismatch"
            )),
        }
    }

    /// Delivers up to `count` random packets to online devices.
    pub(crate) fn deliver_some(&mut self, count: u8, seed: u32) {
        let mut rng = StdRng::seed_from_u64(u64::from(seed));
        for _ in 0..count {
            // Reordering within a window of the oldest packets: delays stay within the
            // horizon (the claim under test); long holds come from devices going offline.
            let ready: Vec<usize> = (0..self.in_flight.len())
                .filter(|&k| self.devices[self.in_flight[k].to].online)
                .take(REORDER_WINDOW)
                .collect();
            let Some(&k) = ready.choose(&mut rng) else {
                return;
            };
            let packet = self.in_flight.remove(k);
            if !self.deliver(packet.clone()) {
                self.in_flight.push(packet);
            }
        }
    }

    /// Delivers everything in flight, oldest first with small local reordering.
    pub(crate) fn drain(&mut self, round: u64) {
        let mut rng = StdRng::seed_from_u64(round);
        let mut batch = std::mem::take(&mut self.in_flight);
        for window in batch.chunks_mut(3) {
            window.shuffle(&mut rng);
        }
        for packet in batch {
            if rng.gen_ratio(1, 50) {
                self.in_flight.push(packet.clone());
            }
            if !self.deliver(packet.clone()) {
                self.in_flight.push(packet);
            }
        }
    }
}

/// A KeyPackage whose device certificate's signature has one bit flipped.
fn forged_key_package(rng: &mut StdRng) -> (Vec<u8>, kith_crypto::identity::IdentityPublicKey) {
    let seed: [u8; 32] = rng.gen();
    let identity = IdentityKey::generate(rng);
    let signer = DeviceSigningKey::generate(rng);
    let forged = DeviceCertificate::issue(
        &identity,
        DeviceId::generate(rng),
        signer.public_key(),
        "forger@sim.example",
        1_700_000_000,
    )
    .ok()
    .map(|c| {
        let mut bytes = c.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        bytes
    })
    .and_then(|b| DeviceCertificate::decode(&b).ok());
    let encoded = forged.and_then(|forged| {
        let mut conn = Connection::open_in_memory().ok()?;
        run_migrations(&mut conn).ok()?;
        // Seeded, like every engine of the run, so that the forged package replays too.
        let provider = KithProvider::seeded(&conn, seed);
        let (not_before, not_after) = SEEDED_KEY_PACKAGE_LIFETIME;
        let bundle = KeyPackage::builder()
            .key_package_lifetime(Lifetime::init(not_before, not_after))
            .build(
                CIPHERSUITE,
                &provider,
                &signer,
                credential_with_key(&forged),
            )
            .ok()?;
        bundle.key_package().tls_serialize_detached().ok()
    });
    (encoded.unwrap_or_default(), identity.public_key())
}
