//! The selected state: FETCH, SEARCH, STORE, EXPUNGE, CLOSE, and keeping sequence numbers
//! in step with the mailbox.
use std::collections::VecDeque;
use std::num::NonZeroU32;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::flag::{StoreResponse, StoreType};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::render::{self, code_other};
use super::session::{Pending, Reply, Request, Selection, Session, State};
use crate::store::{Flags, FlagsMode, MessageMeta};

/// A selected-state command waiting for the message list.
#[derive(Debug)]
pub(crate) struct Deferred {
    tag: Tag<'static>,
    command: DeferredCommand,
    /// Announce EXPUNGEs and new messages first (allowed for UID commands and NOOP).
    refresh: bool,
}

/// The commands that need the message list.
#[derive(Debug)]
pub(crate) enum DeferredCommand {
    Noop,
    Fetch(SequenceSet, Vec<FetchItem>, bool),
    Search(Vec1<SearchKey<'static>>, bool),
    Store(SequenceSet, Flags, FlagsMode, bool),
}

/// One FETCH data item we serve.
#[derive(Debug, Clone)]
pub(crate) enum FetchItem {
    Uid,
    Flags,
    InternalDate,
    Size,
    Body {
        section: Option<Section<'static>>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    Rfc822,
    Rfc822Header,
    Rfc822Text,
}

impl FetchItem {
    fn needs_body(&self) -> bool {
        matches!(
            self,
            Self::Body { .. } | Self::Rfc822 | Self::Rfc822Header | Self::Rfc822Text
        )
    }

    fn marks_seen(&self) -> bool {
        matches!(
            self,
            Self::Body { peek: false, .. } | Self::Rfc822 | Self::Rfc822Text
        )
    }
}

/// A FETCH in progress: messages still to send, one body at a time.
#[derive(Debug)]
pub(crate) struct FetchJob {
    tag: Tag<'static>,
    items: Vec<FetchItem>,
    is_uid: bool,
    queue: VecDeque<(u32, MessageMeta)>,
    current: Option<(u32, MessageMeta)>,
}

/// A STORE waiting for the new flags.
#[derive(Debug)]
pub(crate) struct StoreJob {
    tag: Tag<'static>,
    is_silent: bool,
    is_uid: bool,
}

impl Session {
    /// Commands valid only with a mailbox selected (and the ones we do not support).
    pub(super) fn on_selected_command(&mut self, tag: Tag<'static>, body: CommandBody<'static>) {
        if is_unsupported(&body) {
            self.out
                .no_code(tag, code_other("CANNOT"), "Not supported by this relay");
            return;
        }
        let State::Selected(selection) = &mut self.state else {
            if is_selected_command(&body) {
                self.out.no(tag, "No mailbox selected");
            } else {
                self.reject_unknown(tag);
            }
            return;
        };
        let read_only = selection.read_only;
        let writes = matches!(
            body,
            CommandBody::Store { .. } | CommandBody::Expunge | CommandBody::ExpungeUid { .. }
        );
        if writes && read_only {
            self.out
                .no_code(tag, code_other("READ-ONLY"), "Mailbox is read-only");
            return;
        }
        match body {
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } => match fetch_items(macro_or_item_names) {
                Ok(items) => {
                    let command = DeferredCommand::Fetch(sequence_set, items, uid);
                    self.defer_listed(tag, command, uid);
                }
                Err(why) => self.out.bad(Some(tag), None, why),
            },
            CommandBody::Search { criteria, uid, .. } => {
                self.defer_listed(tag, DeferredCommand::Search(criteria, uid), uid)
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => {
                let mode = match kind {
                    StoreType::Add => FlagsMode::Add,
                    StoreType::Remove => FlagsMode::Remove,
                    StoreType::Replace => FlagsMode::Replace,
                };
                let bits = render::flag_bits(&flags);
                let silent = response == StoreResponse::Silent;
                if uid {
                    let command = DeferredCommand::Store(sequence_set, bits, mode, silent);
                    self.defer_listed(tag, command, true);
                } else {
                    let uids = resolve(selection, &sequence_set, false);
                    self.store_flags(tag, uids, bits, mode, silent, false);
                }
            }
            CommandBody::Expunge => self.ask(
                Request::Expunge(None),
                Pending::Expunge { tag, close: false },
            ),
            CommandBody::ExpungeUid { sequence_set } => {
                let uids = resolve(selection, &sequence_set, true);
                let uids = uids.into_iter().map(|(_, uid)| uid).collect();
                self.ask(
                    Request::Expunge(Some(uids)),
                    Pending::Expunge { tag, close: false },
                );
            }
            CommandBody::Close if !read_only => self.ask(
                Request::Expunge(None),
                Pending::Expunge { tag, close: true },
            ),
            CommandBody::Close | CommandBody::Unselect => {
                self.state = State::Authenticated;
                self.out.ok(tag, "Mailbox closed");
            }
            _ => self.reject_unknown(tag),
        }
    }

    fn reject_unknown(&mut self, tag: Tag<'static>) {
        self.rejected += 1;
        self.out.bad(Some(tag), None, "Unknown command");
    }

    /// Asks for the message list, then runs `command` (after announcing changes if
    /// `refresh`).
    pub(super) fn defer_listed(
        &mut self,
        tag: Tag<'static>,
        command: DeferredCommand,
        refresh: bool,
    ) {
        let deferred = Deferred {
            tag,
            command,
            refresh,
        };
        self.ask(Request::List, Pending::Listed(Box::new(deferred)));
    }

    /// Store replies in the selected state.
    pub(super) fn complete_selected(&mut self, pending: Pending, reply: Reply) {
        match (pending, reply) {
            (Pending::Listed(deferred), Reply::List(list)) => self.run_listed(*deferred, list),
            (Pending::Fetch(job), Reply::Flags(flags)) => self.fetch_marked_seen(job, &flags),
            (Pending::Fetch(job), Reply::Body(body)) => self.fetch_body_arrived(job, body),
            (Pending::Store(job), Reply::Flags(flags)) => self.stored(job, flags),
            (Pending::Expunge { tag, close }, Reply::Expunged(uids)) => {
                if close {
                    self.state = State::Authenticated;
                    self.out.ok(tag, "CLOSE completed");
                } else {
                    self.announce_expunged(&uids);
                    self.out.ok(tag, "EXPUNGE completed");
                }
            }
            (pending, _) => {
                if let Some(tag) = pending_tag(pending) {
                    self.out
                        .no_code(tag, code_other("UNAVAILABLE"), "Temporary server failure");
                }
            }
        }
    }

    /// Brings the announced message list in line with `list`: EXPUNGE for messages gone
    /// (only if `may_expunge`), EXISTS if new ones arrived.
    pub(super) fn apply_listing(&mut self, list: &[MessageMeta], may_expunge: bool) {
        let State::Selected(selection) = &mut self.state else {
            return;
        };
        if may_expunge {
            let mut gone = Vec::new();
            let mut present = list.iter().map(|m| m.uid).peekable();
            for &uid in &selection.uids {
                while present.next_if(|p| *p < uid).is_some() {}
                if present.peek() != Some(&uid) {
                    gone.push(uid);
                }
            }
            self.announce_expunged(&gone);
        }
        let State::Selected(selection) = &mut self.state else {
            return;
        };
        let last = selection.uids.last().copied().unwrap_or(0);
        let before = selection.uids.len();
        selection
            .uids
            .extend(list.iter().map(|m| m.uid).filter(|uid| *uid > last));
        if selection.uids.len() != before {
            let count = selection.uids.len();
            self.out.exists(count);
        }
    }

    /// Sends `* n EXPUNGE` for each UID still announced, and forgets it.
    fn announce_expunged(&mut self, uids: &[u32]) {
        let State::Selected(selection) = &mut self.state else {
            return;
        };
        for uid in uids {
            if let Ok(index) = selection.uids.binary_search(uid) {
                selection.uids.remove(index);
                self.out.expunge(index as u32 + 1);
            }
        }
    }

    fn run_listed(&mut self, deferred: Deferred, list: Vec<MessageMeta>) {
        let Deferred {
            tag,
            command,
            refresh,
        } = deferred;
        if refresh {
            self.apply_listing(&list, true);
        }
        let State::Selected(selection) = &self.state else {
            self.out.no(tag, "No mailbox selected");
            return;
        };
        match command {
            DeferredCommand::Noop => self.out.ok(tag, "NOOP completed"),
            DeferredCommand::Search(criteria, is_uid) => {
                match search(selection, &list, &criteria, is_uid) {
                    Ok(ids) => {
                        self.out.search(ids);
                        self.out.ok(tag, "SEARCH completed");
                    }
                    Err(why) => self.out.no_code(tag, code_other("CANNOT"), why),
                }
            }
            DeferredCommand::Store(set, bits, mode, silent) => {
                let uids = resolve(selection, &set, true);
                self.store_flags(tag, uids, bits, mode, silent, true);
            }
            DeferredCommand::Fetch(set, items, is_uid) => {
                let read_only = selection.read_only;
                let queue: VecDeque<(u32, MessageMeta)> = resolve(selection, &set, is_uid)
                    .into_iter()
                    .filter_map(|(seq, uid)| {
                        let index = list.binary_search_by_key(&uid, |m| m.uid).ok()?;
                        Some((seq, list[index]))
                    })
                    .collect();
                let marks_seen = !read_only && items.iter().any(FetchItem::marks_seen);
                let job = FetchJob {
                    tag,
                    items,
                    is_uid,
                    queue,
                    current: None,
                };
                let unseen: Vec<u32> = job
                    .queue
                    .iter()
                    .filter(|(_, m)| !m.flags.contains(Flags::SEEN))
                    .map(|(_, m)| m.uid)
                    .collect();
                if marks_seen && !unseen.is_empty() {
                    self.ask(
                        Request::SetFlags(unseen, Flags::SEEN, FlagsMode::Add),
                        Pending::Fetch(job),
                    );
                } else {
                    self.continue_fetch(job);
                }
            }
        }
    }

    fn store_flags(
        &mut self,
        tag: Tag<'static>,
        targets: Vec<(u32, u32)>,
        bits: Flags,
        mode: FlagsMode,
        is_silent: bool,
        is_uid: bool,
    ) {
        let uids = targets.into_iter().map(|(_, uid)| uid).collect();
        let job = StoreJob {
            tag,
            is_silent,
            is_uid,
        };
        self.ask(Request::SetFlags(uids, bits, mode), Pending::Store(job));
    }

    fn stored(&mut self, job: StoreJob, flags: Vec<(u32, Flags)>) {
        if !job.is_silent {
            for (uid, bits) in flags {
                let Some(seq) = self.seq_of(uid) else {
                    continue;
                };
                let mut items = vec![MessageDataItem::Flags(render::flag_list(bits))];
                if job.is_uid {
                    items.push(MessageDataItem::Uid(render::non_zero(uid)));
                }
                self.out.fetch(seq, items);
            }
        }
        self.out.ok(job.tag, "STORE completed");
    }

    fn seq_of(&self, uid: u32) -> Option<u32> {
        let State::Selected(selection) = &self.state else {
            return None;
        };
        selection
            .uids
            .binary_search(&uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    fn fetch_marked_seen(&mut self, mut job: FetchJob, flags: &[(u32, Flags)]) {
        for (_, meta) in job.queue.iter_mut() {
            if let Ok(i) = flags.binary_search_by_key(&meta.uid, |(uid, _)| *uid) {
                meta.flags = flags[i].1;
            }
        }
        self.continue_fetch(job);
    }

    fn fetch_body_arrived(&mut self, mut job: FetchJob, body: Option<bytes::Bytes>) {
        if let (Some((seq, meta)), Some(body)) = (job.current.take(), body) {
            let items = fetch_response(&job.items, &meta, job.is_uid, Some(&body));
            self.out.fetch(seq, items);
        }
        self.continue_fetch(job);
    }

    /// Sends the next messages; stops at the first one whose body must be read.
    fn continue_fetch(&mut self, mut job: FetchJob) {
        let needs_body = job.items.iter().any(FetchItem::needs_body);
        while let Some((seq, meta)) = job.queue.pop_front() {
            if needs_body {
                job.current = Some((seq, meta));
                self.ask(Request::Body(meta.uid), Pending::Fetch(job));
                return;
            }
            let items = fetch_response(&job.items, &meta, job.is_uid, None);
            self.out.fetch(seq, items);
        }
        self.out.ok(job.tag, "FETCH completed");
    }
}

fn pending_tag(pending: Pending) -> Option<Tag<'static>> {
    match pending {
        Pending::Login(tag)
        | Pending::Select { tag, .. }
        | Pending::Status(tag, _)
        | Pending::Expunge { tag, .. } => Some(tag),
        Pending::Listed(deferred) => Some(deferred.tag),
        Pending::Fetch(job) => Some(job.tag),
        Pending::Store(job) => Some(job.tag),
        Pending::IdleRefresh => None,
    }
}

fn is_unsupported(body: &CommandBody<'_>) -> bool {
    matches!(
        body,
        CommandBody::Create { .. }
            | CommandBody::Delete { .. }
            | CommandBody::Rename { .. }
            | CommandBody::Subscribe { .. }
            | CommandBody::Unsubscribe { .. }
            | CommandBody::Append { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
    )
}

fn is_selected_command(body: &CommandBody<'_>) -> bool {
    matches!(
        body,
        CommandBody::Fetch { .. }
            | CommandBody::Search { .. }
            | CommandBody::Store { .. }
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Close
            | CommandBody::Unselect
    )
}

/// The FETCH items asked for, or why we cannot serve them.
fn fetch_items(
    names: MacroOrMessageDataItemNames<'static>,
) -> Result<Vec<FetchItem>, &'static str> {
    let names = match names {
        MacroOrMessageDataItemNames::Macro(Macro::Fast) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ],
        MacroOrMessageDataItemNames::Macro(_) => return Err("ENVELOPE is not supported"),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
    };
    names
        .into_iter()
        .map(|name| match name {
            MessageDataItemName::Uid => Ok(FetchItem::Uid),
            MessageDataItemName::Flags => Ok(FetchItem::Flags),
            MessageDataItemName::InternalDate => Ok(FetchItem::InternalDate),
            MessageDataItemName::Rfc822Size => Ok(FetchItem::Size),
            MessageDataItemName::Rfc822 => Ok(FetchItem::Rfc822),
            MessageDataItemName::Rfc822Header => Ok(FetchItem::Rfc822Header),
            MessageDataItemName::Rfc822Text => Ok(FetchItem::Rfc822Text),
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => Ok(FetchItem::Body {
                section,
                partial,
                peek,
            }),
            _ => Err("FETCH item not supported (no BODYSTRUCTURE, ENVELOPE or BINARY)"),
        })
        .collect()
}

/// The FETCH response items for one message, UID first for UID FETCH.
fn fetch_response(
    items: &[FetchItem],
    meta: &MessageMeta,
    is_uid: bool,
    body: Option<&[u8]>,
) -> Vec<MessageDataItem<'static>> {
    let mut out = Vec::with_capacity(items.len() + 1);
    if is_uid && !items.iter().any(|i| matches!(i, FetchItem::Uid)) {
        out.push(MessageDataItem::Uid(render::non_zero(meta.uid)));
    }
    let body = body.unwrap_or_default();
    for item in items {
        let data = match item {
            FetchItem::Uid => MessageDataItem::Uid(render::non_zero(meta.uid)),
            FetchItem::Flags => MessageDataItem::Flags(render::flag_list(meta.flags)),
            FetchItem::InternalDate => match render::internal_date(meta.received_at) {
                Some(date) => MessageDataItem::InternalDate(date),
                None => continue,
            },
            FetchItem::Size => {
                MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            FetchItem::Rfc822 => MessageDataItem::Rfc822(render::literal(body.to_vec())),
            FetchItem::Rfc822Header => MessageDataItem::Rfc822Header(render::literal(
                render::split_header(body).0.to_vec(),
            )),
            FetchItem::Rfc822Text => {
                MessageDataItem::Rfc822Text(render::literal(render::split_header(body).1.to_vec()))
            }
            FetchItem::Body {
                section, partial, ..
            } => {
                let bytes = render::section_bytes(body, section.as_ref());
                let (origin, bytes) = match partial {
                    Some((start, length)) => {
                        let start_at = (*start as usize).min(bytes.len());
                        let end = start_at
                            .saturating_add(length.get() as usize)
                            .min(bytes.len());
                        (Some(*start), bytes[start_at..end].to_vec())
                    }
                    None => (None, bytes.into_owned()),
                };
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: render::literal(bytes),
                }
            }
        };
        out.push(data);
    }
    out
}

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
fn search(
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
