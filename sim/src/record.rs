//! What a run remembers for the invariants: messages sent and shown, joins and removals,
//! each device's branch history, and the violations found on the way.
use std::collections::BTreeMap;

use kith_core::content::MessageId;
use kith_core::group::{Event, GroupId};

use crate::device::Device;

/// A message the simulation sent.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub(crate) id: MessageId,
    pub(crate) sender: usize,
    pub(crate) step: usize,
    pub(crate) epoch: u64,
    pub(crate) epoch_id: [u8; 32],
    pub(crate) members: Vec<String>,
    /// How many entries the sender's `members_log` had when it sent: later entries are
    /// its views after sending.
    pub(crate) views_before: usize,
    pub(crate) probe: bool,
}

/// Everything the checks need.
#[derive(Default)]
pub(crate) struct Record {
    pub(crate) sent: Vec<Sent>,
    pub(crate) shown: Vec<Vec<MessageId>>,
    pub(crate) joins: Vec<u32>,
    pub(crate) removals: Vec<u32>,
    /// Per device: the steps at which it lost the group (removed, or its branch was lost).
    pub(crate) removed_steps: Vec<Vec<usize>>,
    pub(crate) rejoin_requests: Vec<u32>,
    /// Per device: (step, member addresses) each time its view of the members changed.
    pub(crate) members_log: Vec<Vec<(usize, Vec<String>)>>,
    /// Per device: epoch → epoch id on its current branch, as far back as it ever saw.
    pub(crate) history: Vec<BTreeMap<u64, [u8; 32]>>,
    pub(crate) epoch: Vec<Option<u64>>,
    /// (device, step, the other members it saw) of successful leave requests.
    pub(crate) leaves: Vec<(usize, usize, Vec<usize>)>,
    /// (admin, target, step) of successful removals.
    pub(crate) removes: Vec<(usize, usize, usize)>,
    /// (target, step) of successful adds and links.
    pub(crate) adds: Vec<(usize, usize)>,
    pub(crate) violations: Vec<String>,
    pub(crate) step: usize,
}

impl Record {
    pub(crate) fn new(n: usize) -> Self {
        Record {
            shown: vec![Vec::new(); n],
            joins: vec![0; n],
            removals: vec![0; n],
            removed_steps: vec![Vec::new(); n],
            rejoin_requests: vec![0; n],
            members_log: vec![Vec::new(); n],
            history: vec![BTreeMap::new(); n],
            epoch: vec![None; n],
            ..Record::default()
        }
    }

    pub(crate) fn violation(&mut self, text: String) {
        self.violations.push(format!("step {}: {text}", self.step));
    }

    pub(crate) fn joined(&mut self, i: usize) {
        self.joins[i] += 1;
    }

    pub(crate) fn removed(&mut self, i: usize) {
        self.removals[i] += 1;
        self.removed_steps[i].push(self.step);
        self.epoch[i] = None;
        self.history[i].clear();
    }

    pub(crate) fn rejoin_requested(&mut self, i: usize) {
        self.rejoin_requests[i] += 1;
    }

    pub(crate) fn shown(&mut self, i: usize, id: MessageId) {
        self.shown[i].push(id);
    }

    pub(crate) fn epoch_of(&self, i: usize) -> Option<u64> {
        self.epoch[i]
    }

    /// After every committed call: refresh the device's branch history and member view.
    pub(crate) fn after_call(&mut self, i: usize, d: &Device, group: &GroupId, events: &[Event]) {
        if !d.holds(group) {
            return;
        }
        if events.iter().any(|e| matches!(e, Event::Joined { .. })) {
            self.history[i].clear();
        }
        if let Ok(history) = d.engine.epoch_history(&d.conn, group) {
            if let Some(&(last, _)) = history.last() {
                self.history[i].retain(|e, _| *e <= last);
                self.epoch[i] = Some(last);
            }
            self.history[i].extend(history);
        }
        let changed = events.iter().any(|e| {
            matches!(
                e,
                Event::EpochChanged { .. } | Event::Joined { .. } | Event::ForkResolved { .. }
            )
        });
        if changed || self.members_log[i].is_empty() {
            if let Ok(members) = d.engine.members(&d.conn, group) {
                let members: Vec<String> = members.into_iter().map(|m| m.address).collect();
                if self.members_log[i].last().map(|(_, m)| m) != Some(&members) {
                    self.members_log[i].push((self.step, members));
                }
            }
        }
    }

    /// Whether the sender of `m` counted `address` a member when it sent `m` (its view then)
    /// or at any time after (a re-send after a fork or a re-join goes to later members).
    ///
    /// Not by step number: the quiesce and probe phases run as one step, so a sender's view
    /// can change several times within the step it sends in, before and after the send
    /// (seed 5068: a probe sent to a member was judged by a view logged after the probe).
    pub(crate) fn counted_by_sender(&self, m: &Sent, address: &str) -> bool {
        let later = self.members_log[m.sender]
            .get(m.views_before..)
            .unwrap_or(&[]);
        m.members.iter().any(|a| a == address)
            || later
                .iter()
                .any(|(_, members)| members.iter().any(|a| a == address))
    }
}
