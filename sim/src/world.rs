//! The simulated world: devices, the network between them, and every engine call.
//!
//! The edge "seals" a frame by pairing it with its key and "opens" it only if the receiving
//! device lists that key, which is exactly what decides whether a real envelope opens.
//! Each call runs inside `BEGIN IMMEDIATE` on the device's own SQLite file; a crash aborts
//! the transaction mid-way (progress handler) and reopens the file.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use kith_core::group::SealKey;
use kith_core::group::{Event, GroupEngine, GroupError, GroupId, Incoming, OpenedWith, Output};
use kith_crypto::frame::Frame;
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::begin_immediate;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use rusqlite::Connection;

use crate::device::Device;
use crate::record::Record;
use crate::{RunStats, SimError};

/// What an envelope is sealed with.
#[derive(Clone, Debug)]
pub(crate) enum Sealed {
    Epoch([u8; 32]),
    Device(String),
}

/// A frame on its way to one device.
#[derive(Clone, Debug)]
pub(crate) struct Packet {
    pub(crate) to: usize,
    pub(crate) key: Sealed,
    pub(crate) frame: Frame,
}

/// How a call ended.
pub(crate) enum Called<T> {
    Done(T),
    Failed(GroupError),
    Crashed,
}

/// The whole simulation state of one run.
pub(crate) struct World {
    _dir: tempfile::TempDir,
    pub(crate) devices: Vec<Device>,
    pub(crate) identities: Vec<IdentityKey>,
    index: HashMap<String, usize>,
    pub(crate) group: GroupId,
    pub(crate) in_flight: Vec<Packet>,
    held: Vec<Vec<Packet>>,
    stashes: BTreeMap<(usize, i64), Packet>,
    pub(crate) now: u64,
    pub(crate) rng: StdRng,
    pub(crate) step: usize,
    pub(crate) record: Record,
    pub(crate) stats: RunStats,
    /// Whether to trace every step, delivery, send and quiesce round (`KITH_SIM_TRACE`, read
    /// once here).
    pub(crate) trace: bool,
}

impl World {
    /// `n` devices; users own one or two devices each; device 0 creates the group.
    pub(crate) fn new(seed: u64, n: usize) -> Result<Self, SimError> {
        let dir = tempfile::tempdir()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut identities = Vec::new();
        let mut devices = Vec::new();
        for i in 0..n {
            // Every third device is a second device of the previous device's user.
            let user = if i % 3 == 2 {
                devices.last().map_or(0, |d: &Device| d.user)
            } else {
                identities.push(IdentityKey::generate(&mut rng));
                identities.len() - 1
            };
            devices.push(Device::new(
                dir.path(),
                i,
                user,
                &identities[user],
                &mut rng,
            )?);
        }
        let index = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.address.clone(), i))
            .collect();
        let mut world = World {
            _dir: dir,
            held: vec![Vec::new(); n],
            record: Record::new(n),
            devices,
            identities,
            index,
            group: GroupId(Vec::new()),
            in_flight: Vec::new(),
            stashes: BTreeMap::new(),
            now: 1_700_000_000,
            rng,
            step: 0,
            stats: RunStats::default(),
            trace: std::env::var_os("KITH_SIM_TRACE").is_some(),
        };
        world.stats.devices = n as u64;
        world.group = match world.call(0, |e, db, now, rng| e.create_group(db, now, rng, "sim")) {
            Called::Done(group) => group,
            _ => {
                return Err(SimError::Setup(
                    "device 0 could not create the group".into(),
                ))
            }
        };
        world.record.joined(0);
        Ok(world)
    }

    /// The index of the device with this address.
    pub(crate) fn device_of(&self, address: &str) -> Option<usize> {
        self.index.get(address).copied()
    }

    /// Runs one engine call on device `i` in its own transaction, with a crash if armed.
    pub(crate) fn call<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&GroupEngine, &Connection, u64, &mut StdRng) -> Result<(T, Output), GroupError>,
    ) -> Called<T> {
        let crash = self.devices[i].crash.take();
        let before = crash.map(|_| self.fingerprint(i));
        let started = std::time::Instant::now();
        let device = &self.devices[i];
        let tx = match begin_immediate(&device.conn) {
            Ok(tx) => tx,
            Err(error) => return Called::Failed(GroupError::Database(error)),
        };
        let fired = crash.map(|ticks| device.arm(ticks));
        // Engine logs name the device they come from (`d{i=5}:`, with `RUST_LOG=kith_sim=debug`).
        let span = tracing::debug_span!("d", i).entered();
        let result = f(&device.engine, &tx, self.now, &mut self.rng);
        drop(span);
        // The fingerprint read the view before the call; the call may have changed it.
        device.forget_view();
        if fired.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
            drop(result);
            drop(tx);
            self.stats.crashes += 1;
            let seed = self.rng.gen();
            if let Err(error) = self.devices[i].reopen(seed) {
                self.record
                    .violation(format!("reopen after crash failed: {error}"));
            }
            let after = self.fingerprint(i);
            if before.as_deref() != Some(after.as_str()) {
                self.record.violation(format!(
                    "torn state: device {i} after a crash differs from before the call \
                     (before: {}; after: {after})",
                    before.as_deref().unwrap_or("none")
                ));
            }
            return Called::Crashed;
        }
        device.disarm();
        match result {
            Ok((value, out)) => {
                if let Err(error) = tx.commit() {
                    return Called::Failed(GroupError::Database(error));
                }
                let elapsed = started.elapsed();
                self.absorb(i, out, elapsed);
                Called::Done(value)
            }
            Err(error) => Called::Failed(error),
        }
    }

    /// What must survive a crash unchanged: the device's view of the group and its tables.
    pub(crate) fn fingerprint(&self, i: usize) -> String {
        let d = &self.devices[i];
        let count = |table: &str| -> i64 {
            d.conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap_or(-1)
        };
        let view = if d.holds(&self.group) {
            let epoch = d.engine.epoch(&d.conn, &self.group).ok();
            let members = d
                .engine
                .members(&d.conn, &self.group)
                .ok()
                .map(|m| m.into_iter().map(|m| m.address).collect::<Vec<_>>());
            format!("{epoch:?} {members:?}")
        } else {
            "outside".into()
        };
        let tables = [
            "kith_seen",
            "kith_stash",
            "kith_intents",
            "kith_commits",
            "kith_sent",
            "openmls_group_data",
            "openmls_key_packages",
        ];
        let counts: Vec<i64> = tables.iter().map(|t| count(t)).collect();
        format!("{view} {counts:?}")
    }

    /// Queues the output's frames, records its events, and reopens stashed envelopes.
    fn absorb(&mut self, i: usize, out: Output, elapsed: std::time::Duration) {
        let forks = out
            .events
            .iter()
            .filter(|e| matches!(e, Event::ForkResolved { .. }))
            .count();
        if forks > 0 {
            self.stats.rollback_ms_total += elapsed.as_secs_f64() * 1000.0;
        }
        let before = self.record.epoch_of(i);
        for event in &out.events {
            self.note_event(i, event, before);
        }
        self.record
            .after_call(i, &self.devices[i], &self.group, &out.events);
        for outgoing in out.outgoing {
            if self.trace {
                eprintln!(
                    "  d{i} sends {:08x} ({:?}) to {:?}",
                    digest(&outgoing.frame.payload),
                    outgoing.frame.kind,
                    outgoing.recipients
                );
            }
            let key = match outgoing.key {
                SealKey::Epoch { key, .. } => Sealed::Epoch(*key),
                SealKey::Device { address } => Sealed::Device(address),
            };
            for recipient in outgoing.recipients {
                let Some(to) = self.device_of(&recipient) else {
                    self.record
                        .violation(format!("frame for unknown address {recipient}"));
                    continue;
                };
                let packet = Packet {
                    to,
                    key: key.clone(),
                    frame: outgoing.frame.clone(),
                };
                if self.devices[i].online {
                    self.in_flight.push(packet);
                } else {
                    self.held[i].push(packet);
                }
            }
        }
        for stashed in out.reopen {
            let Some(packet) = self.stashes.get(&(i, stashed.id)).cloned() else {
                continue;
            };
            if let Some(opened_with) = self.open(i, &packet) {
                if let Called::Done(()) = self.receive(i, packet, opened_with, Some(stashed.id)) {
                    self.stashes.remove(&(i, stashed.id));
                }
            }
        }
    }

    fn note_event(&mut self, i: usize, event: &Event, epoch_before: Option<u64>) {
        match event {
            Event::ForkResolved { parent_epoch, .. } => {
                self.stats.forks_resolved += 1;
                let depth = epoch_before.map_or(0, |e| e.saturating_sub(*parent_epoch));
                self.stats.max_rollback_depth = self.stats.max_rollback_depth.max(depth);
            }
            Event::EpochChanged { .. } => self.stats.epoch_changes += 1,
            Event::RejoinRequested { .. } => {
                self.stats.rejoins += 1;
                self.record.rejoin_requested(i);
            }
            Event::Joined { .. } => self.record.joined(i),
            Event::Removed { .. } => self.record.removed(i),
            Event::Message { message, .. } => self.record.shown(i, message.id),
            _ => {}
        }
    }

    /// Which of device `i`'s keys opens the packet, if any.
    fn open(&self, i: usize, packet: &Packet) -> Option<OpenedWith> {
        let d = &self.devices[i];
        match &packet.key {
            Sealed::Device(address) => (*address == d.address).then_some(OpenedWith::Device),
            Sealed::Epoch(key) => d
                .engine
                .epoch_keys(&d.conn)
                .ok()?
                .into_iter()
                .find(|k| *k.key == *key)
                .map(|k| OpenedWith::Epoch {
                    group: k.group,
                    epoch: k.epoch,
                }),
        }
    }

    fn receive(
        &mut self,
        i: usize,
        packet: Packet,
        opened_with: OpenedWith,
        stash_id: Option<i64>,
    ) -> Called<()> {
        let incoming = Incoming {
            frame: packet.frame,
            opened_with,
            stash_id,
        };
        let called = self.call(i, |e, db, now, _| Ok(((), e.receive(db, now, incoming)?)));
        if let Called::Failed(error) = &called {
            self.record
                .violation(format!("device {i} failed to handle a frame: {error}"));
        }
        called
    }

    /// Hands one packet to its device: opened and received, or stashed. False if the
    /// device crashed (the packet stays on the relay).
    pub(crate) fn deliver(&mut self, packet: Packet) -> bool {
        let i = packet.to;
        self.stats.deliveries += 1;
        if self.trace {
            eprintln!("  deliver {:08x} to d{i}", digest(&packet.frame.payload));
        }
        match self.open(i, &packet) {
            Some(opened_with) => {
                !matches!(self.receive(i, packet, opened_with, None), Called::Crashed)
            }
            None => {
                let bytes = packet.frame.payload.clone();
                match self.call(i, |e, db, now, _| {
                    e.stash(db, now, &bytes)?;
                    let id = db.last_insert_rowid();
                    Ok((id, Output::default()))
                }) {
                    Called::Done(id) => {
                        self.stashes.insert((i, id), packet);
                        true
                    }
                    Called::Crashed => false,
                    Called::Failed(error) => {
                        self.record.violation(format!("stash failed: {error}"));
                        true
                    }
                }
            }
        }
    }

    /// Device `i` goes offline or comes back (sending what it held, in a burst).
    pub(crate) fn set_online(&mut self, i: usize, online: bool) {
        self.devices[i].online = online;
        if online {
            let held = std::mem::take(&mut self.held[i]);
            self.in_flight.extend(held);
        }
    }

    /// Moves the clock and runs every device's timers.
    pub(crate) fn advance(&mut self, secs: u64) {
        self.now += secs;
        for i in 0..self.devices.len() {
            if let Called::Failed(error) =
                self.call(i, |e, db, now, _| Ok(((), e.handle_timeout(db, now)?)))
            {
                self.record
                    .violation(format!("timeout failed on {i}: {error}"));
            }
        }
    }

    /// Whether any device has a timer due at or before `at`.
    pub(crate) fn timers_due(&self, at: u64) -> bool {
        self.devices.iter().any(|d| {
            d.engine
                .poll_timeout(&d.conn)
                .ok()
                .flatten()
                .is_some_and(|t| t <= at)
        })
    }

    /// The devices that hold the group, in index order.
    pub(crate) fn holders(&self) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&i| self.devices[i].holds(&self.group))
            .collect()
    }

    /// The admins among the holders, as each holder itself knows.
    pub(crate) fn admins(&self) -> Vec<usize> {
        self.holders()
            .into_iter()
            .filter(|&i| self.devices[i].is_admin(&self.group))
            .collect()
    }
}

/// A short fingerprint of a frame for traces (FNV-1a).
pub(crate) fn digest(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}
