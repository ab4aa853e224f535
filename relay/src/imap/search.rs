//! Sequence sets and SEARCH: which messages a command names, over the session's
//! announced sequence numbers and UIDs.
use std::num::NonZeroU32;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::render;
use super::session::Selection;
use crate::store::{Flags, MessageMeta};

/// The (sequence number, UID) pairs a sequence set names, ascending, each once. For UID
/// sets only UIDs that exist count; `*` is the largest UID or sequence number.
pub(super) fn resolve(selection: &Selection, set: &SequenceSet, is_uid: bool) -> Vec<(u32, u32)> {
    let uids = &selection.uids;
    let Some(&last_uid) = uids.last() else {
        return Vec::new();
    };
    let largest = if is_uid { last_uid } else { uids.len() as u32 };
    let mut ranges: Vec<(usize, usize)> = set
        .0
        .as_ref()
        .iter()
        .map(|sequence| {
            let (a, b) = bounds(sequence, largest);
            let (lo, hi) = (a.min(b), a.max(b));
            if is_uid {
                (
                    uids.partition_point(|u| *u < lo),
                    uids.partition_point(|u| *u <= hi),
                )
            } else {
                ((lo as usize) - 1, (hi as usize).min(uids.len()))
            }
        })
        .filter(|(start, end)| start < end)
        .collect();
    ranges.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0;
    for (start, end) in ranges {
        let from = start.max(next);
        if from < end {
            out.extend(
                (from..end)
                    .zip(&uids[from..end])
                    .map(|(i, uid)| (i as u32 + 1, *uid)),
            );
        }
        next = next.max(end);
    }
    out
}

fn bounds(sequence: &Sequence, largest: u32) -> (u32, u32) {
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    match sequence {
        Sequence::Single(s) => (value(s), value(s)),
        Sequence::Range(a, b) => (value(a), value(b)),
    }
}

fn set_contains(set: &SequenceSet, value: u32, largest: u32) -> bool {
    set.0.as_ref().iter().any(|sequence| {
        let (a, b) = bounds(sequence, largest);
        (a.min(b)..=a.max(b)).contains(&value)
    })
}

/// SEARCH over flags, sizes, dates, sequence numbers and UIDs; the bodies are ciphertext,
/// so content searches are refused.
pub(super) fn search(
    selection: &Selection,
    list: &[MessageMeta],
    criteria: &Vec1<SearchKey<'static>>,
    is_uid: bool,
) -> Result<Vec<NonZeroU32>, &'static str> {
    let last_uid = selection.uids.last().copied().unwrap_or(0);
    let count = selection.uids.len() as u32;
    let mut ids = Vec::new();
    for (index, uid) in selection.uids.iter().enumerate() {
        let Ok(at) = list.binary_search_by_key(uid, |m| m.uid) else {
            continue;
        };
        let message = Candidate {
            seq: index as u32 + 1,
            meta: &list[at],
            last_uid,
            count,
        };
        let mut matched = true;
        for key in criteria.as_ref() {
            matched &= message.matches(key)?;
        }
        if matched {
            ids.push(render::non_zero(if is_uid { *uid } else { message.seq }));
        }
    }
    Ok(ids)
}

struct Candidate<'m> {
    seq: u32,
    meta: &'m MessageMeta,
    last_uid: u32,
    count: u32,
}

impl Candidate<'_> {
    fn matches(&self, key: &SearchKey<'_>) -> Result<bool, &'static str> {
        let has = |bit| self.meta.flags.contains(bit);
        let day = |date: &chrono::NaiveDate| {
            chrono::DateTime::from_timestamp(self.meta.received_at, 0)
                .map(|t| t.date_naive().cmp(date))
        };
        Ok(match key {
            SearchKey::All | SearchKey::Old => true,
            SearchKey::New | SearchKey::Recent => false,
            SearchKey::Seen => has(Flags::SEEN),
            SearchKey::Unseen => !has(Flags::SEEN),
            SearchKey::Deleted => has(Flags::DELETED),
            SearchKey::Undeleted => !has(Flags::DELETED),
            SearchKey::Flagged => has(Flags::FLAGGED),
            SearchKey::Unflagged => !has(Flags::FLAGGED),
            SearchKey::Answered => has(Flags::ANSWERED),
            SearchKey::Unanswered => !has(Flags::ANSWERED),
            SearchKey::Draft => has(Flags::DRAFT),
            SearchKey::Undraft => !has(Flags::DRAFT),
            SearchKey::Keyword(_) => false,
            SearchKey::Unkeyword(_) => true,
            SearchKey::Larger(n) => self.meta.size > u64::from(*n),
            SearchKey::Smaller(n) => self.meta.size < u64::from(*n),
            SearchKey::Before(date) => day(date.as_ref()).is_some_and(|o| o.is_lt()),
            SearchKey::On(date) => day(date.as_ref()).is_some_and(|o| o.is_eq()),
            SearchKey::Since(date) => day(date.as_ref()).is_some_and(|o| o.is_ge()),
            SearchKey::SequenceSet(set) => set_contains(set, self.seq, self.count),
            SearchKey::Uid(set) => set_contains(set, self.meta.uid, self.last_uid),
            SearchKey::Not(key) => !self.matches(key)?,
            SearchKey::Or(a, b) => self.matches(a)? || self.matches(b)?,
            SearchKey::And(keys) => {
                let mut all = true;
                for key in keys.as_ref() {
                    all &= self.matches(key)?;
                }
                all
            }
            _ => {
                return Err("Search by content or header is not supported: messages are ciphertext")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(uids: &[u32]) -> Selection {
        Selection {
            read_only: false,
            uids: uids.to_vec(),
        }
    }

    #[test]
    fn uid_sets_resolve_to_existing_messages_once_in_order() {
        let s = selection(&[2, 5, 9, 10]);
        let set: SequenceSet = "9:*,1:5,5".parse().unwrap();
        assert_eq!(
            resolve(&s, &set, true),
            vec![(1, 2), (2, 5), (3, 9), (4, 10)]
        );
        let set: SequenceSet = "11:*".parse().unwrap();
        assert_eq!(
            resolve(&s, &set, true),
            vec![(4, 10)],
            "n:* includes the largest UID"
        );
        let set: SequenceSet = "3,6:8".parse().unwrap();
        assert!(resolve(&s, &set, true).is_empty());
    }

    #[test]
    fn sequence_sets_use_positions_and_ignore_numbers_past_the_end() {
        let s = selection(&[2, 5, 9]);
        let set: SequenceSet = "2:*".parse().unwrap();
        assert_eq!(resolve(&s, &set, false), vec![(2, 5), (3, 9)]);
        let set: SequenceSet = "7".parse().unwrap();
        assert!(resolve(&s, &set, false).is_empty());
        assert!(resolve(&selection(&[]), &set, false).is_empty());
    }
}
