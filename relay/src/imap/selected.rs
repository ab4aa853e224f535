//! The selected state: FETCH, SEARCH, STORE, EXPUNGE, CLOSE, and keeping sequence numbers
//! in step with the mailbox.
use std::collections::VecDeque;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::fetch::{fetch_items, fetch_response, FetchItem};
use super::render::{self, code_other};
use super::search::{resolve, search};
use super::session::{Pending, Reply, Request, Session, State};
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
                let silent = response == StoreResponse::Silent;
                self.store_command(tag, sequence_set, kind, &flags, silent, uid);
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

    /// STORE changes flags by sequence number at once; UID STORE refreshes first.
    fn store_command(
        &mut self,
        tag: Tag<'static>,
        set: SequenceSet,
        kind: StoreType,
        flags: &[Flag<'_>],
        silent: bool,
        is_uid: bool,
    ) {
        let mode = match kind {
            StoreType::Add => FlagsMode::Add,
            StoreType::Remove => FlagsMode::Remove,
            StoreType::Replace => FlagsMode::Replace,
        };
        let bits = render::flag_bits(flags);
        if is_uid {
            let command = DeferredCommand::Store(set, bits, mode, silent);
            self.defer_listed(tag, command, true);
        } else if let State::Selected(selection) = &self.state {
            let uids = resolve(selection, &set, false);
            self.store_flags(tag, uids, bits, mode, silent, false);
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
