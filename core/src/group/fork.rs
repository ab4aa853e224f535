//! Fork choice: which of several valid commits on the same parent epoch wins.
//!
//! A pure function of the commit and its parent state (DESIGN.md "Groups over relays that
//! do not order messages"): the least by (class, commit hash) wins, where removals come
//! before adds and context changes, which come before self-updates. Every member that holds
//! the same commits picks the same chain, in whatever order they arrived.
use kith_crypto::mls::openmls::prelude::{ProposalType, StagedCommit};
use serde::{Deserialize, Serialize};

/// What kind of change a commit makes, in fork-choice order (least wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CommitClass {
    /// The commit removes at least one member.
    Removal = 0,
    /// The commit adds members or changes the group context (and removes no one).
    AddOrContext = 1,
    /// The commit only refreshes keys.
    SelfUpdate = 2,
}

impl CommitClass {
    /// The class of a staged (validated) commit.
    pub(crate) fn of(staged: &StagedCommit) -> Self {
        if staged.remove_proposals().next().is_some() {
            return CommitClass::Removal;
        }
        let changes_more = staged
            .queued_proposals()
            .any(|p| !matches!(p.proposal().proposal_type(), ProposalType::Update));
        if changes_more {
            CommitClass::AddOrContext
        } else {
            CommitClass::SelfUpdate
        }
    }

    pub(crate) fn to_i64(self) -> i64 {
        self as i64
    }

    pub(crate) fn from_i64(value: i64) -> Self {
        match value {
            0 => CommitClass::Removal,
            1 => CommitClass::AddOrContext,
            _ => CommitClass::SelfUpdate,
        }
    }
}

/// A commit as fork choice sees it: its class and the hash of its MLS message bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommitRank {
    /// What the commit changes.
    pub class: CommitClass,
    /// SHA-256 of the commit's `MLSMessage` bytes.
    pub hash: Vec<u8>,
}

/// Fork choice between two valid commits on the same parent epoch: true when `candidate`
/// beats `incumbent` (is strictly less by class, then hash).
pub fn beats(candidate: &CommitRank, incumbent: &CommitRank) -> bool {
    candidate < incumbent
}

/// The winner among valid commits on the same parent epoch, if there are any.
pub fn choose_fork<'a>(
    commits: impl IntoIterator<Item = &'a CommitRank>,
) -> Option<&'a CommitRank> {
    commits.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rank(class: CommitClass, hash: &[u8]) -> CommitRank {
        CommitRank {
            class,
            hash: hash.to_vec(),
        }
    }

    #[test]
    fn removals_beat_adds_beat_updates_whatever_the_hash() {
        let remove = rank(CommitClass::Removal, &[0xff; 32]);
        let add = rank(CommitClass::AddOrContext, &[0x00; 32]);
        let update = rank(CommitClass::SelfUpdate, &[0x00; 32]);
        assert!(beats(&remove, &add));
        assert!(beats(&add, &update));
        assert!(beats(&remove, &update));
        assert!(!beats(&update, &remove));
        assert_eq!(choose_fork([&update, &add, &remove]), Some(&remove));
    }

    #[test]
    fn same_class_is_decided_by_hash_and_a_commit_never_beats_itself() {
        let a = rank(CommitClass::SelfUpdate, &[1, 2, 3]);
        let b = rank(CommitClass::SelfUpdate, &[1, 2, 4]);
        assert!(beats(&a, &b));
        assert!(!beats(&b, &a));
        assert!(!beats(&a, &a.clone()));
        assert_eq!(choose_fork(std::iter::empty()), None);
    }

    #[test]
    fn class_codes_round_trip() {
        for class in [
            CommitClass::Removal,
            CommitClass::AddOrContext,
            CommitClass::SelfUpdate,
        ] {
            assert_eq!(CommitClass::from_i64(class.to_i64()), class);
        }
    }

    fn any_rank() -> impl Strategy<Value = CommitRank> {
        (0i64..3, proptest::collection::vec(any::<u8>(), 32)).prop_map(|(c, hash)| CommitRank {
            class: CommitClass::from_i64(c),
            hash,
        })
    }

    proptest! {
        /// Whatever order commits arrive in, keeping the incumbent unless beaten ends on
        /// the same winner as choosing over the whole set.
        #[test]
        fn arrival_order_does_not_matter(mut ranks in proptest::collection::vec(any_rank(), 1..8), seed in any::<u64>()) {
            let best = choose_fork(&ranks).cloned().expect("non-empty");
            let n = ranks.len();
            ranks.rotate_left((seed as usize) % n);
            if seed % 2 == 1 { ranks.reverse(); }
            let mut incumbent = ranks[0].clone();
            for r in &ranks[1..] {
                if beats(r, &incumbent) { incumbent = r.clone(); }
            }
            prop_assert_eq!(incumbent, best);
        }
    }
}
