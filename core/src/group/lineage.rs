//! Lineage: which branch a Welcome comes from, so that a device holding a group can tell a
//! Welcome from a better branch from a stale one (found by the simulator, seeds 2007, 2010).
//!
//! A device added on a branch that later loses fork choice holds state nobody else will
//! follow; the commit that beat its branch was sent before it joined, so it never sees it.
//! What does reach it is the Welcome of the add re-issued on the winning branch (or another
//! admin's add there). Comparing epochs cannot tell the two apart, so every Welcome carries,
//! in a GroupInfo extension signed by the adder, the adder's commit log: the (class, hash)
//! of the commit on each parent epoch before the add, and the class of the add itself (its
//! hash does not exist yet when the GroupInfo is signed). The joiner keeps the lineage it
//! joined with; a later Welcome is taken only if fork choice prefers its chain at the first
//! parent where the two chains differ, or, where they agree, if it is for a later epoch.
use std::collections::BTreeMap;

use kith_crypto::mls::openmls::prelude::{Extension, UnknownExtension};
use rusqlite::{params, Connection, OptionalExtension};

use super::errors::GroupError;
use super::fork::{beats, CommitClass, CommitRank};
use super::repair::DETECT_EPOCHS;
use super::GroupId;

/// The GroupInfo extension type that carries a Welcome's lineage (RFC 9420 §17.3: the
/// private-use range starts at 0xF000).
pub const LINEAGE_EXTENSION_TYPE: u16 = 0xF4B1;

/// The most parent epochs a lineage lists (older ones are dropped by the adder).
pub const MAX_LINEAGE_ENTRIES: usize = DETECT_EPOCHS as usize + 1;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 4;
const ENTRY_LEN: usize = 8 + 1 + 1 + 32;

/// The commit a chain holds on one parent epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineageEntry {
    /// The parent epoch the commit was made on.
    pub parent: u64,
    /// Its fork-choice class.
    pub class: CommitClass,
    /// SHA-256 of its `MLSMessage` bytes, when known (not for the add a Welcome comes from).
    pub hash: Option<[u8; 32]>,
    /// Whether a fork notice made the adder take this commit against fork choice
    /// (`kith_fork_pins`): it then beats any commit on its parent that is not pinned.
    pub pinned: bool,
}

/// The chain a Welcome's epoch was reached by, as its adder knew it, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Lineage {
    /// One entry per parent epoch, ascending; the last is the add itself (no hash).
    pub entries: Vec<LineageEntry>,
}

impl Lineage {
    /// The wire form: version, reserved, entry count (u16), then per entry the parent
    /// (u64), class (u8), flags (u8: 1 = a hash follows, 2 = pinned, only with a hash) and
    /// 32 hash bytes (zero if absent); all big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.entries.len() * ENTRY_LEN);
        out.extend([VERSION, 0]);
        out.extend((self.entries.len() as u16).to_be_bytes());
        for entry in &self.entries {
            out.extend(entry.parent.to_be_bytes());
            out.push(entry.class.to_i64() as u8);
            out.push(u8::from(entry.hash.is_some()) | (u8::from(entry.pinned) << 1));
            out.extend(entry.hash.unwrap_or([0; 32]));
        }
        out
    }

    /// Parses the wire form; `None` for anything malformed: wrong version, unknown class,
    /// more than [`MAX_LINEAGE_ENTRIES`], parents not strictly ascending, trailing bytes.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (header, body) = bytes.split_at_checked(HEADER_LEN)?;
        if header[0] != VERSION || header[1] != 0 {
            return None;
        }
        let count = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if count > MAX_LINEAGE_ENTRIES || body.len() != count * ENTRY_LEN {
            return None;
        }
        let mut entries: Vec<LineageEntry> = Vec::with_capacity(count);
        for chunk in body.chunks_exact(ENTRY_LEN) {
            let parent = u64::from_be_bytes(chunk[..8].try_into().ok()?);
            let class = class_from_wire(chunk[8])?;
            let hash: [u8; 32] = chunk[10..].try_into().ok()?;
            let (hash, pinned) = match chunk[9] {
                0 if hash == [0; 32] => (None, false),
                1 => (Some(hash), false),
                3 => (Some(hash), true),
                _ => return None,
            };
            if entries.last().is_some_and(|last| last.parent >= parent) {
                return None;
            }
            entries.push(LineageEntry {
                parent,
                class,
                hash,
                pinned,
            });
        }
        Some(Lineage { entries })
    }

    /// The lineage as a GroupInfo extension.
    pub(crate) fn to_extension(&self) -> Extension {
        Extension::Unknown(LINEAGE_EXTENSION_TYPE, UnknownExtension(self.encode()))
    }

    fn chain(&self) -> Chain {
        self.entries
            .iter()
            .map(|e| (e.parent, (e.class, e.hash, e.pinned)))
            .collect()
    }
}

fn class_from_wire(value: u8) -> Option<CommitClass> {
    match value {
        0 => Some(CommitClass::Removal),
        1 => Some(CommitClass::AddOrContext),
        2 => Some(CommitClass::SelfUpdate),
        _ => None,
    }
}

/// Parent epoch → the commit a chain holds there, and whether it is pinned.
type Chain = BTreeMap<u64, (CommitClass, Option<[u8; 32]>, bool)>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kith_lineage (
    group_id BLOB NOT NULL,
    parent_epoch INTEGER NOT NULL,
    class INTEGER NOT NULL,
    hash BLOB,
    PRIMARY KEY (group_id, parent_epoch)
);
";

/// The table, for `forget_group`.
pub(crate) const TABLE: &str = "kith_lineage";

/// The (class, hash) our joined lineage lists on `parent`, if it lists one with its hash.
pub(crate) fn joined_entry(
    db: &Connection,
    group: &GroupId,
    parent: u64,
) -> Result<Option<(i64, Vec<u8>)>, GroupError> {
    Ok(db
        .query_row(
            "SELECT class, hash FROM kith_lineage
             WHERE group_id = ?1 AND parent_epoch = ?2 AND hash IS NOT NULL",
            params![group.0, parent as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Creates the table (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// This device's chain for the group: the lineage it joined with, then its commit log; a
/// commit is pinned if `kith_fork_pins` names it.
fn our_chain(db: &Connection, group: &GroupId) -> Result<Chain, GroupError> {
    let mut chain = Chain::new();
    for sql in [
        "SELECT parent_epoch, class, hash FROM kith_lineage WHERE group_id = ?1",
        "SELECT parent_epoch, class, hash FROM kith_commits WHERE group_id = ?1",
    ] {
        let mut stmt = db.prepare(sql)?;
        let rows = stmt.query_map(params![group.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })?;
        for row in rows {
            let (parent, class, hash) = row?;
            let hash = hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
            let pinned = match hash {
                Some(hash) => super::fork_notice::pinned(db, group, parent as u64)?
                    .is_some_and(|pin| pin == hash),
                None => false,
            };
            chain.insert(parent as u64, (CommitClass::from_i64(class), hash, pinned));
        }
    }
    Ok(chain)
}

/// The lineage for a Welcome of an add of `add_class` made on `parent` (our current epoch).
pub(crate) fn for_add(
    db: &Connection,
    group: &GroupId,
    parent: u64,
    add_class: CommitClass,
) -> Result<Lineage, GroupError> {
    let mut entries: Vec<LineageEntry> = our_chain(db, group)?
        .range(..parent)
        .rev()
        .take(MAX_LINEAGE_ENTRIES - 1)
        .map(|(&parent, &(class, hash, pinned))| LineageEntry {
            parent,
            class,
            hash,
            pinned,
        })
        .collect();
    entries.reverse();
    entries.push(LineageEntry {
        parent,
        class: add_class,
        hash: None,
        pinned: false,
    });
    Ok(Lineage { entries })
}

/// Remembers the lineage of the Welcome we joined with (replacing any earlier one), and
/// the commits it pins: they beat any later notice's or Welcome's commit that does not.
pub(crate) fn store_joined(
    db: &Connection,
    group: &GroupId,
    lineage: &Lineage,
) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_lineage WHERE group_id = ?1",
        params![group.0],
    )?;
    for entry in &lineage.entries {
        db.execute(
            "INSERT OR REPLACE INTO kith_lineage (group_id, parent_epoch, class, hash)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                group.0,
                entry.parent as i64,
                entry.class.to_i64(),
                entry.hash.map(|h| h.to_vec())
            ],
        )?;
        if let (true, Some(hash)) = (entry.pinned, entry.hash) {
            super::fork_notice::pin(db, group, entry.parent, &hash)?;
        }
    }
    Ok(())
}

/// The parent of the add that put us into the group, if our lineage does not know its hash
/// yet (`join_hash.rs`).
pub(crate) fn unhashed_join(db: &Connection, group: &GroupId) -> Result<Option<u64>, GroupError> {
    let last: Option<(i64, Option<Vec<u8>>)> = db
        .query_row(
            "SELECT parent_epoch, hash FROM kith_lineage WHERE group_id = ?1
             ORDER BY parent_epoch DESC LIMIT 1",
            params![group.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(last.and_then(|(parent, hash)| hash.is_none().then_some(parent as u64)))
}

/// The hash of the commit on `parent` in the lineage we joined with, if it names one.
pub(crate) fn join_hash_at(
    db: &Connection,
    group: &GroupId,
    parent: u64,
) -> Result<Option<[u8; 32]>, GroupError> {
    let hash: Option<Option<Vec<u8>>> = db
        .query_row(
            "SELECT hash FROM kith_lineage WHERE group_id = ?1 AND parent_epoch = ?2",
            params![group.0, parent as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(hash
        .flatten()
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()))
}

/// Records the hash of the add on `parent` that put us into the group.
pub(crate) fn set_join_hash(
    db: &Connection,
    group: &GroupId,
    parent: u64,
    hash: [u8; 32],
) -> Result<(), GroupError> {
    db.execute(
        "UPDATE kith_lineage SET hash = ?3
         WHERE group_id = ?1 AND parent_epoch = ?2 AND hash IS NULL",
        params![group.0, parent as i64, hash.to_vec()],
    )?;
    Ok(())
}

/// Whether a Welcome for `their_epoch` with `lineage` should replace the state we hold at
/// `our_epoch`: at the first parent where both chains name a commit and the two differ,
/// a pinned commit beats one that is not (seed 705: the group followed an admin's deep
/// branch against fork choice there, and a device that joined the other branch after the
/// fork refused every Welcome from it), else fork choice decides; where they never
/// differ, the later epoch wins. Where our join is still unhashed and theirs names a
/// commit of the same class on its parent, nothing can be decided: the Welcome is no
/// better for now and is judged again when our join hash comes (seed 9635: a device took
/// a Welcome for a later epoch of the branch that lost there, and stayed on it).
pub(crate) fn welcome_is_better(
    db: &Connection,
    group: &GroupId,
    our_epoch: u64,
    their_epoch: u64,
    lineage: &Lineage,
) -> Result<bool, GroupError> {
    let ours = our_chain(db, group)?;
    let theirs = lineage.chain();
    tracing::debug!(our_epoch, their_epoch, ours = ?short(&ours), theirs = ?short(&theirs), "comparing a Welcome's lineage");
    let unhashed = unhashed_join(db, group)?;
    Ok(prefer(&ours, &theirs, unhashed, our_epoch, their_epoch))
}

/// Whether our chain holds the commit with `hash` on `parent`.
pub(crate) fn holds_commit(
    db: &Connection,
    group: &GroupId,
    parent: u64,
    hash: &[u8; 32],
) -> Result<bool, GroupError> {
    Ok(our_chain(db, group)?
        .get(&parent)
        .is_some_and(|(_, ours, _)| ours.as_ref() == Some(hash)))
}

/// The first parent at which `lineage` names another commit than our chain: the fork
/// between our branch and the one a Welcome with that lineage puts us on.
pub(crate) fn first_difference(
    db: &Connection,
    group: &GroupId,
    lineage: &Lineage,
) -> Result<Option<u64>, GroupError> {
    let ours = our_chain(db, group)?;
    Ok(lineage.chain().into_iter().find_map(|(parent, theirs)| {
        let ours = ours.get(&parent)?;
        let hashes_differ = matches!((ours.1, theirs.1), (Some(a), Some(b)) if a != b);
        (ours.0 != theirs.0 || hashes_differ).then_some(parent)
    }))
}

fn short(chain: &Chain) -> Vec<(u64, i64, Option<String>, bool)> {
    chain
        .iter()
        .map(|(p, (c, h, pinned))| (*p, c.to_i64(), h.map(|h| hex::encode(&h[..3])), *pinned))
        .collect()
}

fn prefer(
    our_chain: &Chain,
    their_chain: &Chain,
    unhashed_join: Option<u64>,
    our_epoch: u64,
    their_epoch: u64,
) -> bool {
    for (parent, theirs) in their_chain {
        let Some(ours) = our_chain.get(parent) else {
            continue;
        };
        let undecided = Some(*parent) == unhashed_join
            && ours.0 == theirs.0
            && theirs.1.is_some()
            && !agree_after(our_chain, their_chain, *parent);
        if undecided {
            return false;
        }
        let hashes_differ = matches!((ours.1, theirs.1), (Some(a), Some(b)) if a != b);
        if (ours.0 != theirs.0 || hashes_differ) && ours.2 != theirs.2 {
            return theirs.2;
        }
        if ours.0 != theirs.0 {
            return theirs.0 < ours.0;
        }
        if let (Some(our_hash), Some(their_hash)) = (ours.1, theirs.1) {
            if our_hash != their_hash {
                let rank = |hash: [u8; 32]| CommitRank {
                    class: ours.0,
                    hash: hash.to_vec(),
                };
                return beats(&rank(their_hash), &rank(our_hash));
            }
        }
    }
    their_epoch > our_epoch
}

/// Whether both chains name the same commit on some parent after `parent`: a commit
/// applies to one parent state only, so they agree on `parent` too (seed 11: a device
/// whose join hash never came waited forever for it, though the chains agreed after it).
fn agree_after(ours: &Chain, theirs: &Chain, parent: u64) -> bool {
    theirs.range(parent + 1..).any(|(later, theirs)| {
        matches!((ours.get(later).and_then(|o| o.1), theirs.1), (Some(a), Some(b)) if a == b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(parent: u64, class: CommitClass, hash: Option<u8>) -> LineageEntry {
        LineageEntry {
            parent,
            class,
            hash: hash.map(|b| [b; 32]),
            pinned: false,
        }
    }

    fn lineage(entries: Vec<LineageEntry>) -> Lineage {
        Lineage { entries }
    }

    #[test]
    fn round_trips_and_refuses_malformed_bytes() {
        let l = lineage(vec![
            entry(3, CommitClass::SelfUpdate, Some(7)),
            LineageEntry {
                pinned: true,
                ..entry(4, CommitClass::Removal, Some(9))
            },
            entry(5, CommitClass::AddOrContext, None),
        ]);
        let bytes = l.encode();
        assert_eq!(Lineage::decode(&bytes), Some(l.clone()));
        assert_eq!(Lineage::decode(&bytes[..bytes.len() - 1]), None);
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Lineage::decode(&extra), None);
        let mut bad_class = bytes.clone();
        bad_class[HEADER_LEN + 8] = 3;
        assert_eq!(Lineage::decode(&bad_class), None);
        for flag in [2, 4, 7] {
            let mut bad_flag = bytes.clone();
            bad_flag[HEADER_LEN + ENTRY_LEN * 2 + 9] = flag;
            assert_eq!(Lineage::decode(&bad_flag), None, "flag {flag}");
        }
        let unordered = lineage(vec![
            entry(4, CommitClass::SelfUpdate, Some(1)),
            entry(4, CommitClass::SelfUpdate, Some(2)),
        ]);
        assert_eq!(Lineage::decode(&unordered.encode()), None);
        let mut too_many = vec![VERSION, 0];
        too_many.extend(((MAX_LINEAGE_ENTRIES + 1) as u16).to_be_bytes());
        too_many.extend(vec![0; (MAX_LINEAGE_ENTRIES + 1) * ENTRY_LEN]);
        assert_eq!(Lineage::decode(&too_many), None);
        assert_eq!(Lineage::decode(&[]), None);
    }

    #[test]
    fn the_first_difference_decides_by_fork_choice() {
        let ours = lineage(vec![
            entry(9, CommitClass::SelfUpdate, Some(1)),
            entry(10, CommitClass::AddOrContext, Some(5)),
            entry(11, CommitClass::AddOrContext, None),
        ])
        .chain();
        // Their chain has a removal on parent 10: it beats our add there, whatever follows.
        let better = lineage(vec![
            entry(9, CommitClass::SelfUpdate, Some(1)),
            entry(10, CommitClass::Removal, Some(0xee)),
            entry(11, CommitClass::AddOrContext, None),
        ])
        .chain();
        assert!(prefer(&ours, &better, None, 14, 12));
        assert!(!prefer(&better, &ours, None, 12, 14));
        // Same class on parent 10: the smaller hash wins.
        let lower = lineage(vec![entry(10, CommitClass::AddOrContext, Some(4))]).chain();
        let higher = lineage(vec![entry(10, CommitClass::AddOrContext, Some(6))]).chain();
        assert!(prefer(&ours, &lower, None, 14, 11));
        assert!(!prefer(&ours, &higher, None, 11, 14));
    }

    #[test]
    fn a_pinned_commit_beats_fork_choice_at_the_first_difference() {
        let ours = lineage(vec![
            entry(4, CommitClass::AddOrContext, Some(1)),
            entry(5, CommitClass::AddOrContext, None),
        ])
        .chain();
        // Their self-update on parent 4 loses fork choice to our add, but a fork notice
        // pinned it on their branch: it wins.
        let pinned = lineage(vec![
            LineageEntry {
                pinned: true,
                ..entry(4, CommitClass::SelfUpdate, Some(9))
            },
            entry(12, CommitClass::AddOrContext, None),
        ])
        .chain();
        assert!(prefer(&ours, &pinned, None, 7, 13));
        assert!(!prefer(&pinned, &ours, None, 13, 7));
        // The same commit, pinned on one side only, is no difference.
        let same = lineage(vec![LineageEntry {
            pinned: true,
            ..entry(4, CommitClass::AddOrContext, Some(1))
        }])
        .chain();
        assert!(!prefer(&ours, &same, None, 7, 7));
    }

    #[test]
    fn agreeing_chains_prefer_the_later_epoch_so_a_duplicate_welcome_is_stale() {
        let ours = lineage(vec![
            entry(10, CommitClass::AddOrContext, Some(5)),
            entry(11, CommitClass::AddOrContext, None),
        ])
        .chain();
        assert!(!prefer(&ours, &ours, None, 12, 12));
        assert!(!prefer(&ours, &ours, None, 15, 12));
        assert!(prefer(&ours, &ours, None, 12, 13));
        // Unknown hashes of the same class cannot be compared: no decision from them.
        let unknown = lineage(vec![entry(11, CommitClass::AddOrContext, Some(3))]).chain();
        assert!(!prefer(&ours, &unknown, None, 12, 12));
    }

    #[test]
    fn a_chain_naming_a_commit_where_our_join_is_unhashed_waits() {
        let ours = lineage(vec![
            entry(10, CommitClass::AddOrContext, Some(5)),
            entry(11, CommitClass::AddOrContext, None),
        ])
        .chain();
        let theirs = lineage(vec![
            entry(10, CommitClass::AddOrContext, Some(5)),
            entry(11, CommitClass::AddOrContext, Some(7)),
            entry(12, CommitClass::AddOrContext, None),
        ])
        .chain();
        assert!(!prefer(&ours, &theirs, Some(11), 12, 13));
        // A later commit both chains name shows the join was the same commit.
        let mut agreeing = ours.clone();
        agreeing.insert(12, (CommitClass::SelfUpdate, Some([8; 32]), false));
        let mut theirs = theirs;
        theirs.insert(12, (CommitClass::SelfUpdate, Some([8; 32]), false));
        theirs.insert(13, (CommitClass::SelfUpdate, None, false));
        assert!(prefer(&agreeing, &theirs, Some(11), 13, 14));
        // Another class there is decided without the hash: our add beats their update.
        let update = lineage(vec![entry(11, CommitClass::SelfUpdate, Some(7))]).chain();
        assert!(!prefer(&ours, &update, Some(11), 12, 13));
        let removal = lineage(vec![entry(11, CommitClass::Removal, Some(7))]).chain();
        assert!(prefer(&ours, &removal, Some(11), 12, 13));
    }
}
