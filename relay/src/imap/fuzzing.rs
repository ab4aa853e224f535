//! Drives the session state machine with an in-memory mailbox: the fuzz target's entry
//! point, and the harness of the session's unit tests.
use bytes::Bytes;

use super::session::{Action, LoginResult, Reply, Request, Session, SessionConfig};
use crate::store::{Flags, FlagsMode, MailboxStatus, MessageMeta};

/// An in-memory stand-in for one mailbox of the store.
#[derive(Debug, Default)]
pub(crate) struct MemoryMailbox {
    pub(crate) messages: Vec<(MessageMeta, Bytes)>,
    pub(crate) next_uid: u32,
}

impl MemoryMailbox {
    /// A mailbox holding `bodies`, UIDs from 1.
    pub(crate) fn with(bodies: &[&[u8]]) -> Self {
        let mut mailbox = Self {
            messages: Vec::new(),
            next_uid: 1,
        };
        for body in bodies {
            mailbox.deliver(body);
        }
        mailbox
    }

    /// Adds a message.
    pub(crate) fn deliver(&mut self, body: &[u8]) {
        let meta = MessageMeta {
            uid: self.next_uid,
            size: body.len() as u64,
            flags: Flags::default(),
            received_at: 1_700_000_000,
        };
        self.messages.push((meta, Bytes::copy_from_slice(body)));
        self.next_uid += 1;
    }

    fn list(&self) -> Vec<MessageMeta> {
        self.messages.iter().map(|(m, _)| *m).collect()
    }

    /// Answers a request the way the real store does; the password `"secret password"`
    /// logs in.
    pub(crate) fn answer(&mut self, request: Request) -> Reply {
        match request {
            Request::Login { password, .. } => {
                Reply::Login(if password.as_str() == "secret password" {
                    LoginResult::Accepted
                } else {
                    LoginResult::Rejected
                })
            }
            Request::Status => {
                let list = self.list();
                let status = MailboxStatus {
                    uidvalidity: 42,
                    uidnext: self.next_uid,
                    exists: list.len() as u32,
                    unseen: list
                        .iter()
                        .filter(|m| !m.flags.contains(Flags::SEEN))
                        .count() as u32,
                };
                Reply::Status(status, list)
            }
            Request::List => Reply::List(self.list()),
            Request::Body(uid) => Reply::Body(
                self.messages
                    .iter()
                    .find(|(m, _)| m.uid == uid)
                    .map(|(_, b)| b.clone()),
            ),
            Request::SetFlags(uids, flags, mode) => {
                let mut out = Vec::new();
                for (meta, _) in self
                    .messages
                    .iter_mut()
                    .filter(|(m, _)| uids.contains(&m.uid))
                {
                    meta.flags = match mode {
                        FlagsMode::Add => meta.flags.union(flags),
                        FlagsMode::Remove => meta.flags.without(flags),
                        FlagsMode::Replace => flags,
                    };
                    out.push((meta.uid, meta.flags));
                }
                Reply::Flags(out)
            }
            Request::Expunge(only) => {
                let doomed = |m: &MessageMeta| {
                    m.flags.contains(Flags::DELETED)
                        && only.as_ref().is_none_or(|o| o.contains(&m.uid))
                };
                let removed = self
                    .messages
                    .iter()
                    .filter(|(m, _)| doomed(m))
                    .map(|(m, _)| m.uid)
                    .collect();
                self.messages.retain(|(m, _)| !doomed(m));
                Reply::Expunged(removed)
            }
        }
    }
}

/// Runs `session` against `mailbox` until it needs input or closes; returns what it sent
/// and whether it closed.
pub(crate) fn run(session: &mut Session, mailbox: &mut MemoryMailbox) -> (Vec<u8>, bool) {
    let mut sent = Vec::new();
    // Bounded so that a bug cannot hang a fuzzer.
    for _ in 0..100_000 {
        match session.next_action() {
            Action::Send(bytes) => sent.extend(bytes),
            Action::Store(request) => {
                let reply = mailbox.answer(request);
                session.complete(reply);
            }
            Action::NeedInput | Action::Idle => return (sent, false),
            Action::StartTls => session.tls_started(),
            Action::Close => return (sent, true),
        }
    }
    (sent, false)
}

/// Feeds arbitrary bytes to a fresh session over a small mailbox, in chunks whose sizes the
/// first byte chooses, waking IDLE between chunks; nothing may panic or loop.
pub fn fuzz_session(input: &[u8]) {
    let Some((&chunking, input)) = input.split_first() else {
        return;
    };
    let mut session = Session::new(SessionConfig {
        is_tls: chunking & 1 == 0,
        offers_starttls: true,
        allows_plaintext_auth: chunking & 2 == 0,
    });
    let mut mailbox =
        MemoryMailbox::with(&[b"Subject: a\r\n\r\none", b"two", b"Subject: c\r\n\r\n"]);
    let chunk = usize::from(chunking >> 2).max(1);
    let _ = run(&mut session, &mut mailbox);
    for piece in input.chunks(chunk) {
        session.receive(piece);
        let (_, closed) = run(&mut session, &mut mailbox);
        if closed {
            return;
        }
        if session.is_idling() {
            mailbox.deliver(b"new");
            session.mailbox_changed();
            let _ = run(&mut session, &mut mailbox);
        }
    }
}
