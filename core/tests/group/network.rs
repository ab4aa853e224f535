//! An in-memory network of devices for the group engine: each device a temp-file SQLite
//! database and its own `GroupEngine`; an edge that "seals" a frame by pairing it with its
//! key and "opens" it only if the receiving device lists that key, which is exactly what
//! decides whether a real envelope opens.
use std::collections::BTreeMap;

use kith_core::content::{Content, MessageId};
use kith_core::group::{
    Event, GroupEngine, GroupError, GroupId, Incoming, MemberInfo, NewDevice, OpenedWith, Output,
    SealKey,
};
use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::frame::Frame;
use kith_crypto::identity::{IdentityKey, IdentityPublicKey};
use kith_crypto::mls::openmls::prelude::tls_codec::Serialize as _;
use kith_crypto::mls::openmls::prelude::KeyPackage;
use kith_crypto::mls::{
    begin_immediate, credential_with_key, run_migrations, DeviceSigningKey, KithProvider,
    CIPHERSUITE,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rusqlite::Connection;

#[path = "roles.rs"]
mod roles;

#[path = "interruptions.rs"]
mod interruptions;

/// How the frames in flight are delivered in one round.
#[derive(Clone, Copy, Debug)]
pub enum Order {
    /// In the order they were sent.
    Sent,
    /// Last sent first.
    Reversed,
    /// Every frame twice, the copies after the whole round.
    Duplicated,
    /// A seeded random permutation.
    Shuffled(u64),
}

#[derive(Clone, Debug)]
enum Sealed {
    Epoch([u8; 32]),
    Device(String),
}

#[derive(Clone, Debug)]
pub struct Envelope {
    key: Sealed,
    frame: Frame,
}

impl Envelope {
    /// Whether it carries a control frame (a join hash, a fork notice, ...).
    pub fn is_control(&self) -> bool {
        self.frame.kind == kith_crypto::frame::FrameKind::Control
    }

    /// Whether it is sealed to one device (a Welcome, a control frame) rather than to an
    /// epoch of a group.
    pub fn is_device_sealed(&self) -> bool {
        matches!(self.key, Sealed::Device(_))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.key {
            Sealed::Epoch(key) => {
                out.push(0);
                out.extend_from_slice(key);
            }
            Sealed::Device(address) => {
                out.push(1);
                out.push(address.len() as u8);
                out.extend_from_slice(address.as_bytes());
            }
        }
        out.extend(self.frame.encode().expect("frame encodes"));
        out
    }

    fn decode(bytes: &[u8]) -> Envelope {
        let (key, rest) = match bytes[0] {
            0 => (
                Sealed::Epoch(bytes[1..33].try_into().expect("key")),
                &bytes[33..],
            ),
            _ => {
                let len = bytes[1] as usize;
                let address = String::from_utf8(bytes[2..2 + len].to_vec()).expect("utf8");
                (Sealed::Device(address), &bytes[2 + len..])
            }
        };
        Envelope {
            key,
            frame: Frame::decode(rest).expect("frame decodes"),
        }
    }
}

pub struct Node {
    engine: GroupEngine,
    conn: Connection,
    address: String,
    identity: IdentityKey,
    /// The engine's signing key, for commits built behind the engine's back (roles.rs).
    signer: zeroize::Zeroizing<[u8; 32]>,
    events: Vec<Event>,
    errors: Vec<String>,
}

pub struct Network {
    nodes: Vec<Node>,
    in_flight: Vec<(usize, Envelope)>,
    sent: Vec<(usize, String)>,
    now: u64,
    rng: StdRng,
    _dir: tempfile::TempDir,
}

fn device(dir: &std::path::Path, i: usize, rng: &mut StdRng) -> Node {
    let address = format!("d{i}@relay.example");
    let mut conn = Connection::open(dir.join(format!("d{i}.db"))).expect("open sqlite");
    run_migrations(&mut conn).expect("openmls migrations");
    kith_core::group::migrate(&conn).expect("engine migrations");
    let identity = IdentityKey::generate(rng);
    let signer = DeviceSigningKey::generate(rng);
    let certificate = DeviceCertificate::issue(
        &identity,
        DeviceId::generate(rng),
        signer.public_key(),
        &address,
        1_700_000_000,
    )
    .expect("certificate");
    Node {
        signer: signer.to_bytes(),
        engine: GroupEngine::new(signer, certificate).expect("engine"),
        conn,
        address,
        identity,
        events: Vec::new(),
        errors: Vec::new(),
    }
}

/// The frames of `frames` that go to one of the devices `to`.
pub fn only(frames: Vec<(usize, Envelope)>, to: &[usize]) -> Vec<(usize, Envelope)> {
    frames.into_iter().filter(|(t, _)| to.contains(t)).collect()
}

/// A fresh identity nobody in the network has.
pub fn other_identity() -> IdentityPublicKey {
    IdentityKey::generate(&mut rand::rngs::OsRng).public_key()
}

/// With `RUST_LOG` set (for example `RUST_LOG=kith_core=debug,group=debug`), the engine's
/// log goes to the test's output, each line under a `d{i=N}` span naming the device.
fn trace_if_asked() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

impl Network {
    pub fn new(n: usize) -> Self {
        trace_if_asked();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = StdRng::seed_from_u64(n as u64);
        let nodes = (0..n).map(|i| device(dir.path(), i, &mut rng)).collect();
        Network {
            nodes,
            in_flight: Vec::new(),
            sent: Vec::new(),
            now: 1_700_000_000,
            rng,
            _dir: dir,
        }
    }

    /// Runs one engine call on device `i` inside its own transaction; queues its output.
    fn call<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&GroupEngine, &Connection, u64, &mut StdRng) -> Result<(T, Output), GroupError>,
    ) -> Result<T, GroupError> {
        let _device = tracing::debug_span!("d", i).entered();
        let node = &self.nodes[i];
        let tx = begin_immediate(&node.conn).expect("begin");
        let result = f(&node.engine, &tx, self.now, &mut self.rng);
        match result {
            Ok((value, out)) => {
                tx.commit().expect("commit");
                self.absorb(i, out);
                Ok(value)
            }
            Err(error) => Err(error),
        }
    }

    fn absorb(&mut self, i: usize, out: Output) {
        self.nodes[i].events.extend(out.events);
        for outgoing in out.outgoing {
            let key = match outgoing.key {
                SealKey::Epoch { key, .. } => Sealed::Epoch(*key),
                SealKey::Device { address } => Sealed::Device(address),
            };
            for recipient in outgoing.recipients {
                let to = self
                    .nodes
                    .iter()
                    .position(|n| n.address == recipient)
                    .expect("recipient is a device of the network");
                let envelope = Envelope {
                    key: key.clone(),
                    frame: outgoing.frame.clone(),
                };
                self.in_flight.push((to, envelope));
            }
        }
        for stashed in out.reopen {
            let envelope = Envelope::decode(&stashed.envelope);
            if let Some(opened_with) = self.open(i, &envelope) {
                self.receive(i, envelope, opened_with, Some(stashed.id));
            }
        }
    }

    fn open(&self, i: usize, envelope: &Envelope) -> Option<OpenedWith> {
        let node = &self.nodes[i];
        match &envelope.key {
            Sealed::Device(address) => (*address == node.address).then_some(OpenedWith::Device),
            Sealed::Epoch(key) => node
                .engine
                .epoch_keys(&node.conn)
                .expect("epoch keys")
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
        envelope: Envelope,
        opened_with: OpenedWith,
        stash_id: Option<i64>,
    ) {
        let incoming = Incoming {
            frame: envelope.frame,
            opened_with,
            stash_id,
        };
        if let Err(error) = self.call(i, |e, db, now, _| Ok(((), e.receive(db, now, incoming)?))) {
            self.nodes[i].errors.push(error.to_string());
        }
    }

    fn deliver(&mut self, i: usize, envelope: Envelope) {
        match self.open(i, &envelope) {
            Some(opened_with) => self.receive(i, envelope, opened_with, None),
            None => {
                let bytes = envelope.encode();
                self.call(i, |e, db, now, _| {
                    Ok(((), {
                        e.stash(db, now, &bytes)?;
                        Output::default()
                    }))
                })
                .expect("stash");
            }
        }
    }

    fn arrange(
        &mut self,
        mut batch: Vec<(usize, Envelope)>,
        order: Order,
    ) -> Vec<(usize, Envelope)> {
        match order {
            Order::Sent => batch,
            Order::Reversed => {
                batch.reverse();
                batch
            }
            Order::Duplicated => {
                let copy = batch.clone();
                batch.extend(copy);
                batch
            }
            Order::Shuffled(seed) => {
                let mut rng = StdRng::seed_from_u64(seed ^ self.rng_round());
                batch.shuffle(&mut rng);
                batch
            }
        }
    }

    fn rng_round(&mut self) -> u64 {
        use rand::RngCore;
        self.rng.next_u64()
    }

    /// Delivers everything in flight, round after round, until nothing is left.
    pub fn run(&mut self, order: Order) {
        for _ in 0..200 {
            if self.in_flight.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut self.in_flight);
            for (to, envelope) in self.arrange(batch, order) {
                self.deliver(to, envelope);
            }
        }
        panic!("the network did not quiesce");
    }

    /// Delivers, in order sent and round after round, every frame to one of the devices
    /// `to`; frames to the others stay in flight.
    pub fn run_only(&mut self, to: &[usize]) {
        for _ in 0..200 {
            let (now, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|(i, _)| to.contains(i));
            self.in_flight = held;
            if now.is_empty() {
                return;
            }
            for (i, envelope) in now {
                self.deliver(i, envelope);
            }
        }
        panic!("the network did not quiesce");
    }

    /// Delivers one round, with a chosen order per recipient (others in order).
    pub fn run_with_orders(&mut self, orders: &[(usize, Order)]) {
        let batch = std::mem::take(&mut self.in_flight);
        let mut per_node: BTreeMap<usize, Vec<(usize, Envelope)>> = BTreeMap::new();
        for (to, envelope) in batch {
            per_node.entry(to).or_default().push((to, envelope));
        }
        for (to, queue) in per_node {
            let order = orders
                .iter()
                .find(|(n, _)| *n == to)
                .map_or(Order::Sent, |(_, o)| *o);
            for (to, envelope) in self.arrange(queue, order) {
                self.deliver(to, envelope);
            }
        }
    }

    /// Delivers the frame most recently sent to device `i`.
    pub fn deliver_last_to(&mut self, i: usize) {
        let at = self
            .in_flight
            .iter()
            .rposition(|(to, _)| *to == i)
            .expect("a frame in flight to that device");
        let (to, envelope) = self.in_flight.remove(at);
        self.deliver(to, envelope);
    }

    /// Duplicates every third frame in flight (chosen by `seed`).
    pub fn duplicate_some(&mut self, seed: u64) {
        let copies: Vec<_> = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(k, _)| (*k as u64 + seed).is_multiple_of(3))
            .map(|(_, f)| f.clone())
            .collect();
        self.in_flight.extend(copies);
    }

    pub fn drop_in_flight_to(&mut self, i: usize) {
        self.in_flight.retain(|(to, _)| *to != i);
    }

    pub fn copy_in_flight_to(&mut self, i: usize) {
        let copies: Vec<_> = self
            .in_flight
            .iter()
            .filter(|(to, _)| *to != i)
            .map(|(_, e)| (i, e.clone()))
            .collect();
        self.in_flight.extend(copies);
    }

    pub fn take_in_flight(&mut self) -> Vec<(usize, Envelope)> {
        std::mem::take(&mut self.in_flight)
    }

    pub fn put_in_flight(&mut self, frames: Vec<(usize, Envelope)>) {
        self.in_flight.extend(frames);
    }

    /// Moves the clock and runs every device's timers.
    pub fn advance(&mut self, secs: u64) {
        self.now += secs;
        for i in 0..self.nodes.len() {
            self.call(i, |e, db, now, _| Ok(((), e.handle_timeout(db, now)?)))
                .expect("timeout");
        }
    }

    pub fn create(&mut self, i: usize, name: &str) -> GroupId {
        self.call(i, |e, db, now, rng| e.create_group(db, now, rng, name))
            .expect("create group")
    }

    fn key_package(&mut self, j: usize) -> Vec<u8> {
        let node = &self.nodes[j];
        let tx = begin_immediate(&node.conn).expect("begin");
        let package = node
            .engine
            .key_packages(&tx, 1)
            .expect("key package")
            .remove(0);
        tx.commit().expect("commit");
        package
    }

    pub fn add(&mut self, i: usize, group: GroupId, new: &[usize]) {
        let devices: Vec<NewDevice> = new
            .iter()
            .map(|&j| NewDevice {
                key_package: self.key_package(j),
                identity: self.nodes[j].identity.public_key(),
            })
            .collect();
        self.call(i, |e, db, now, _| {
            Ok(((), e.add_devices(db, now, &group, devices)?))
        })
        .expect("add devices");
    }

    pub fn try_add_as(
        &mut self,
        i: usize,
        group: &GroupId,
        j: usize,
        identity: IdentityPublicKey,
    ) -> Result<(), GroupError> {
        let key_package = self.key_package(j);
        self.try_add_package(i, group, key_package, identity)
    }

    pub fn try_add_package(
        &mut self,
        i: usize,
        group: &GroupId,
        key_package: Vec<u8>,
        identity: IdentityPublicKey,
    ) -> Result<(), GroupError> {
        let devices = vec![NewDevice {
            key_package,
            identity,
        }];
        self.call(i, |e, db, now, _| {
            Ok(((), e.add_devices(db, now, group, devices)?))
        })
    }

    /// A KeyPackage whose device certificate's signature has one bit flipped.
    pub fn forged_key_package(&mut self) -> (Vec<u8>, IdentityPublicKey) {
        let identity = IdentityKey::generate(&mut self.rng);
        let signer = DeviceSigningKey::generate(&mut self.rng);
        let certificate = DeviceCertificate::issue(
            &identity,
            DeviceId::generate(&mut self.rng),
            signer.public_key(),
            "forger@relay.example",
            1_700_000_000,
        )
        .expect("certificate");
        let mut bytes = certificate.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let forged = DeviceCertificate::decode(&bytes).expect("structurally valid");
        let mut conn = Connection::open_in_memory().expect("sqlite");
        run_migrations(&mut conn).expect("migrations");
        let provider = KithProvider::new(&conn);
        let bundle = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &provider,
                &signer,
                credential_with_key(&forged),
            )
            .expect("key package");
        let encoded = bundle
            .key_package()
            .tls_serialize_detached()
            .expect("serialize");
        (encoded, identity.public_key())
    }

    pub fn remove(&mut self, i: usize, group: &GroupId, who: &[usize]) {
        let addresses = who.iter().map(|&j| self.nodes[j].address.clone()).collect();
        self.call(i, |e, db, now, _| {
            Ok(((), e.remove_devices(db, now, group, addresses)?))
        })
        .expect("remove devices");
    }

    pub fn self_update(&mut self, i: usize, group: &GroupId) {
        self.call(i, |e, db, now, _| Ok(((), e.self_update(db, now, group)?)))
            .expect("self update");
    }

    pub fn leave(&mut self, i: usize, group: &GroupId) {
        self.call(i, |e, db, now, rng| Ok(((), e.leave(db, now, rng, group)?)))
            .expect("leave");
    }

    pub fn rename(&mut self, i: usize, group: &GroupId, name: &str) {
        self.call(i, |e, db, now, rng| {
            Ok(((), e.rename(db, now, rng, group, name)?))
        })
        .expect("rename");
    }

    pub fn send(&mut self, i: usize, group: &GroupId, content: Content) -> MessageId {
        self.call(i, |e, db, now, rng| e.send(db, now, rng, group, content))
            .expect("send")
    }

    pub fn send_text(&mut self, i: usize, group: &GroupId, body: &str) {
        self.sent.push((i, body.to_owned()));
        self.send(
            i,
            group,
            Content::Text {
                body: body.into(),
                reply_to: None,
            },
        );
    }

    pub fn epoch(&self, i: usize, group: &GroupId) -> (u64, [u8; 32]) {
        let node = &self.nodes[i];
        node.engine.epoch(&node.conn, group).expect("epoch")
    }

    pub fn members(&self, i: usize, group: &GroupId) -> Vec<MemberInfo> {
        let node = &self.nodes[i];
        node.engine.members(&node.conn, group).expect("members")
    }

    pub fn name(&self, i: usize, group: &GroupId) -> String {
        let node = &self.nodes[i];
        node.engine.group_name(&node.conn, group).expect("name")
    }

    pub fn has_group(&self, i: usize, group: &GroupId) -> bool {
        let node = &self.nodes[i];
        node.engine
            .groups(&node.conn)
            .expect("groups")
            .contains(group)
    }

    pub fn stash_len(&self, i: usize) -> i64 {
        self.nodes[i]
            .conn
            .query_row("SELECT COUNT(*) FROM kith_stash", [], |r| r.get(0))
            .expect("count")
    }

    /// Device `from` sends a text, and every device of `nodes` shows it once: they are on
    /// one branch, and messages flow on it.
    pub fn assert_one_branch_carries_messages(
        &mut self,
        group: &GroupId,
        nodes: &[usize],
        from: usize,
    ) {
        self.send_text(from, group, "one branch");
        self.run(Order::Sent);
        self.assert_each_shown_once(group, nodes, &["one branch"]);
    }

    /// When device `i`'s engine next wants `handle_timeout`, if ever.
    pub fn poll_timeout(&self, i: usize) -> Option<u64> {
        let node = &self.nodes[i];
        node.engine.poll_timeout(&node.conn).expect("poll timeout")
    }

    pub fn stored_key_packages(&self, i: usize) -> i64 {
        self.nodes[i]
            .conn
            .query_row("SELECT COUNT(*) FROM openmls_key_packages", [], |r| {
                r.get(0)
            })
            .expect("count")
    }

    pub fn events(&self, i: usize) -> &[Event] {
        &self.nodes[i].events
    }

    pub fn all_events(&self) -> Vec<Event> {
        self.nodes.iter().flat_map(|n| n.events.clone()).collect()
    }

    /// The text bodies device `i` was shown in `group`, in order.
    pub fn shown(&self, i: usize, group: &GroupId) -> Vec<String> {
        self.shown_contents(i, group)
            .into_iter()
            .filter_map(|c| match c {
                Content::Text { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }

    pub fn shown_contents(&self, i: usize, group: &GroupId) -> Vec<Content> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message {
                    group: g, message, ..
                } if g == group => Some(message.content.clone()),
                _ => None,
            })
            .collect()
    }

    /// Same epoch, same epoch id, same members (exactly `nodes`) everywhere; no errors.
    pub fn assert_converged(&self, group: &GroupId, nodes: &[usize]) {
        let expected: Vec<String> = {
            let mut a: Vec<String> = nodes
                .iter()
                .map(|&i| self.nodes[i].address.clone())
                .collect();
            a.sort();
            a
        };
        let first = self.epoch(nodes[0], group);
        for &i in nodes {
            assert!(
                self.nodes[i].errors.is_empty(),
                "device {i} errors: {:?}",
                self.nodes[i].errors
            );
            assert_eq!(
                self.epoch(i, group),
                first,
                "device {i} is on another epoch or branch"
            );
            let members: Vec<String> = self
                .members(i, group)
                .into_iter()
                .map(|m| m.address)
                .collect();
            assert_eq!(members, expected, "device {i} sees other members");
        }
    }

    /// Every text in `texts` shown exactly once on each device in `nodes` but its sender.
    pub fn assert_each_shown_once(&self, group: &GroupId, nodes: &[usize], texts: &[&str]) {
        for &i in nodes {
            let shown = self.shown(i, group);
            for text in texts {
                let sender = self
                    .sent
                    .iter()
                    .find(|(_, t)| t == text)
                    .map(|(s, _)| *s)
                    .expect("the test sent this text");
                let expected = usize::from(sender != i);
                let count = shown.iter().filter(|s| s == text).count();
                assert_eq!(
                    count, expected,
                    "device {i} was shown {text:?} {count} times"
                );
            }
        }
    }
}
