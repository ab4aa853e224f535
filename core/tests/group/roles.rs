//! Network helpers for admin roles and beyond-horizon repair.
use kith_core::group::{GroupError, GroupId, Outgoing, Output, SealKey};
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::mls::openmls::prelude::tls_codec::Serialize as _;
use kith_crypto::mls::openmls::prelude::OpenMlsProvider as _;
use kith_crypto::mls::openmls::prelude::{GroupId as MlsGroupId, MlsGroup, MlsMessageOut};
use kith_crypto::mls::{DeviceSigningKey, KithProvider};

use super::{Network, Order};

impl Network {
    /// `n` devices and a group "g" that device 0 created with every other device added,
    /// then made `admins` admins; everything delivered in order.
    pub fn with_group(n: usize, admins: &[usize]) -> (Network, GroupId) {
        Network::with_outsiders(n, n, admins)
    }

    /// `n` devices, of which the first `members` hold a group "g" that device 0 created,
    /// then made `admins` admins; the others are outside it. Everything is delivered.
    pub fn with_outsiders(n: usize, members: usize, admins: &[usize]) -> (Network, GroupId) {
        let mut net = Network::new(n);
        let g = net.create(0, "g");
        net.add(0, g.clone(), &(1..members).collect::<Vec<_>>());
        net.run(Order::Sent);
        if !admins.is_empty() {
            net.make_admin(0, &g, admins);
            net.run(Order::Sent);
        }
        (net, g)
    }

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
        self.call(i, |e, db, now, _| {
            Ok(((), e.make_admin(db, now, group, addresses)?))
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

    /// Device `i` misbehaves: `build` makes a commit straight from its openmls state,
    /// past every check its engine would run, and it goes to the other members under the
    /// current epoch's envelope key, as the engine would send it.
    pub fn rogue_commit(
        &mut self,
        i: usize,
        group: &GroupId,
        build: impl FnOnce(&mut MlsGroup, &KithProvider<'_>, &DeviceSigningKey) -> MlsMessageOut,
    ) {
        let node = &self.nodes[i];
        let provider = KithProvider::new(&node.conn);
        let mut mls_group = MlsGroup::load(provider.storage(), &MlsGroupId::from_slice(&group.0))
            .expect("load")
            .expect("a group");
        let signer = DeviceSigningKey::from_bytes(&node.signer[..]).expect("signer");
        let commit = build(&mut mls_group, &provider, &signer);
        let (epoch, _) = node.engine.epoch(&node.conn, group).expect("epoch");
        let key = node
            .engine
            .epoch_keys(&node.conn)
            .expect("epoch keys")
            .into_iter()
            .find(|k| &k.group == group && k.epoch == epoch)
            .expect("the current epoch's key")
            .key;
        let recipients = node
            .engine
            .members(&node.conn, group)
            .expect("members")
            .into_iter()
            .map(|m| m.address)
            .filter(|a| *a != node.address)
            .collect();
        let mut out = Output::default();
        out.outgoing.push(Outgoing {
            recipients,
            key: SealKey::Epoch {
                group: group.clone(),
                epoch,
                key,
            },
            frame: Frame {
                kind: FrameKind::Mls,
                payload: commit.tls_serialize_detached().expect("serialize"),
            },
        });
        self.absorb(i, out);
    }

    pub fn identity(&self, i: usize) -> kith_crypto::identity::IdentityPublicKey {
        self.nodes[i].identity.public_key()
    }

    pub fn errors(&self, i: usize) -> &[String] {
        &self.nodes[i].errors
    }
}
