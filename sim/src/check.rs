//! The invariants, checked once delivery has quiesced.
use std::collections::HashMap;

use kith_crypto::mls::openmls::prelude::{GroupId as MlsGroupId, MlsGroup, OpenMlsProvider as _};
use kith_crypto::mls::KithProvider;

use crate::record::Sent;
use crate::world::World;

impl World {
    /// Runs every check; violations go to the record.
    pub(crate) fn check(&mut self) {
        let all = self.holders();
        let orphans = self.orphans(&all);
        self.stats.orphans += orphans.len() as u64;
        for &i in &orphans {
            self.record.violation(format!(
                "device {i} is orphaned: it holds the group and counts others, but no other \
                 holder counts it"
            ));
        }
        let holders: Vec<usize> = all.into_iter().filter(|i| !orphans.contains(i)).collect();
        self.check_agreement(&holders);
        self.check_requests(&holders);
        self.check_shown(&holders);
        self.check_leaves(&holders);
    }

    /// Holders left on a dead branch: no other holder counts them a member, though they
    /// count others (their add was on a branch that lost fork choice and their adder left
    /// it without telling them; docs/consistency.md). Each is a violation; the other
    /// checks leave them out, so that one orphan is reported once.
    pub(crate) fn orphans(&self, holders: &[usize]) -> Vec<usize> {
        let view = |i: usize| -> Vec<usize> {
            let d = &self.devices[i];
            d.engine
                .members(&d.conn, &self.group)
                .map(|m| {
                    m.iter()
                        .filter_map(|m| self.device_of(&m.address))
                        .collect()
                })
                .unwrap_or_default()
        };
        holders
            .iter()
            .copied()
            .filter(|&i| {
                let counted = holders.iter().any(|&h| h != i && view(h).contains(&i));
                !counted && view(i).len() > 1 && holders.len() > 1
            })
            .collect()
    }

    /// Every holder: same epoch, epoch id, members and admins; the members are exactly the
    /// holders.
    fn check_agreement(&mut self, holders: &[usize]) {
        let mut expected: Vec<String> = holders
            .iter()
            .map(|&i| self.devices[i].address.clone())
            .collect();
        expected.sort();
        let mut first: Option<(usize, String)> = None;
        for &i in holders {
            let d = &self.devices[i];
            let epoch = d.engine.epoch(&d.conn, &self.group).ok();
            let members: Option<Vec<String>> = d
                .engine
                .members(&d.conn, &self.group)
                .ok()
                .map(|m| m.into_iter().map(|m| m.address).collect());
            let admins = d.engine.admins(&d.conn, &self.group).ok();
            if members.as_ref() != Some(&expected) {
                self.record.violation(format!(
                    "device {i} sees members {members:?}, the holders are {expected:?}"
                ));
            }
            let view = format!("{epoch:?} {members:?} {admins:?}");
            match &first {
                None => first = Some((i, view)),
                Some((j, other)) if *other != view => {
                    self.record
                        .violation(format!("devices {j} and {i} disagree: {other} vs {view}"));
                }
                Some(_) => {}
            }
        }
    }

    /// Leaves and removals by admins still in the group took effect (unless the target or
    /// the remover was re-added since).
    fn check_requests(&mut self, holders: &[usize]) {
        // Whether device `j` was added, or lost the group, at or after step `after`: its
        // membership (and every plan it had) started over.
        let last_add = |j: usize, after: usize| {
            self.record.adds.iter().any(|&(t, s)| t == j && s >= after)
                || self.record.removed_steps[j].iter().any(|&s| s >= after)
        };
        let admins = self.admins();
        let mut problems = Vec::new();
        for (j, step, others) in &self.record.leaves {
            let (j, step) = (*j, *step);
            // Someone who saw the request and is an admin now must have removed it — unless
            // it lost its membership since (re-added later): its plans died with it.
            let answerable = admins
                .iter()
                .any(|&a| others.contains(&a) && !last_add(a, step));
            if holders.contains(&j) && answerable && !last_add(j, step) {
                problems.push(format!(
                    "device {j} asked to leave at step {step} and is still in"
                ));
            }
        }
        for &(a, j, step) in &self.record.removes {
            // A remover that was itself removed meanwhile (and re-added) lost the removal
            // with its membership: its pending commands die with it.
            if holders.contains(&a)
                && holders.contains(&j)
                && !last_add(j, step)
                && !last_add(a, step)
            {
                problems.push(format!(
                    "device {a} removed {j} at step {step}; {j} is still in"
                ));
            }
        }
        for p in problems {
            self.record.violation(p);
        }
    }

    /// Each message at most once everywhere; never on a device the sender did not count
    /// as a member; exactly once where the run gives no excuse (see docs/consistency.md).
    fn check_shown(&mut self, holders: &[usize]) {
        let mut problems = Vec::new();
        let sent: HashMap<_, &Sent> = self.record.sent.iter().map(|s| (s.id, s)).collect();
        let chain = holders.first().map(|&h| self.record.history[h].clone());
        for (i, shown) in self.record.shown.iter().enumerate() {
            let mut counts: HashMap<_, usize> = HashMap::new();
            for id in shown {
                *counts.entry(*id).or_default() += 1;
            }
            for (id, count) in &counts {
                if *count > 1 {
                    problems.push(format!("device {i} was shown {id:?} {count} times"));
                }
                let Some(m) = sent.get(id) else { continue };
                let address = &self.devices[i].address;
                if !self.record.counted_by_sender(m, address) {
                    problems.push(format!(
                        "device {i} was shown {id:?} although its sender never counted it a member"
                    ));
                }
            }
            for m in &self.record.sent {
                if self.must_show(m, i, holders, chain.as_ref()) && !counts.contains_key(&m.id) {
                    let kind = if m.probe { "probe" } else { "message" };
                    problems.push(format!(
                        "device {i} never showed {kind} {:?} of device {} (step {})",
                        m.id, m.sender, m.step
                    ));
                }
            }
        }
        for p in problems {
            self.record.violation(p);
        }
    }

    fn must_show(
        &self,
        m: &Sent,
        i: usize,
        holders: &[usize],
        chain: Option<&std::collections::BTreeMap<u64, [u8; 32]>>,
    ) -> bool {
        let r = &self.record;
        // Removed, re-joined or asked to rejoin, as the device saw it or as the schedule did
        // it (a device removed before its first Welcome arrived never sees the removal, and
        // the Welcome of its re-add puts it past the epochs it missed).
        let steady = |d: usize| {
            r.joins[d] <= 1
                && r.removals[d] == 0
                && r.rejoin_requests[d] == 0
                && !r.removes.iter().any(|&(_, t, s)| t == d && s >= m.step)
        };
        if i == m.sender || !holders.contains(&i) || !holders.contains(&m.sender) {
            return false;
        }
        if m.probe {
            return true;
        }
        let on_chain = chain.is_some_and(|c| c.get(&m.epoch) == Some(&m.epoch_id));
        on_chain && steady(i) && steady(m.sender) && m.members.contains(&self.devices[i].address)
    }

    /// Every leaf in every holder's tree carries a certificate that verifies.
    fn check_leaves(&mut self, holders: &[usize]) {
        let mut problems = Vec::new();
        for &i in holders {
            let d = &self.devices[i];
            let provider = KithProvider::new(&d.conn);
            let gid = MlsGroupId::from_slice(&self.group.0);
            let leaves = MlsGroup::load(provider.storage(), &gid)
                .ok()
                .flatten()
                .map(|g| g.members().count());
            let verified = d.engine.members(&d.conn, &self.group).ok().map(|m| m.len());
            if leaves != verified {
                problems.push(format!(
                    "device {i}: {leaves:?} leaves but {verified:?} verify"
                ));
            }
        }
        for p in problems {
            self.record.violation(p);
        }
    }
}
