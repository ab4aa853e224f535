//! The SMTP session as a sans-IO state machine.
//!
//! The edge feeds it bytes ([`Session::receive`]), drains its replies
//! ([`Session::take_output`]) and carries out the [`Action`]s [`Session::poll`] hands back
//! (TLS upgrade, login, recipient lookup, storing a message), reporting each result through
//! the matching method. The session never touches a socket, the store or a clock: time comes
//! in as an argument. Commands are parsed by smtp-proto, one complete line at a time; DATA is
//! dot-unstuffed by smtp-proto's streaming receiver.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use smtp_proto::request::receiver::DataReceiver;
use zeroize::Zeroizing;

use crate::limits::Limiter;
use crate::metrics::{Metrics, Rejection};
use crate::store::Accepted;

use super::reply::Reply;

/// Longest command line accepted (RFC 5321 allows 512; AUTH lines are longer).
pub(crate) const MAX_LINE: usize = 4096;
/// Bad commands tolerated in one session before it is closed.
const MAX_ERRORS: u32 = 20;

/// Which listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Submission with implicit TLS: AUTH required.
    Submissions,
    /// Submission with STARTTLS: AUTH required.
    Submission,
    /// Inbound from other relays: no AUTH, only local recipients.
    Inbound,
}

impl ListenerKind {
    /// Whether clients submit here (authenticated) rather than relays delivering.
    pub fn is_submission(self) -> bool {
        matches!(self, Self::Submissions | Self::Submission)
    }
}

/// Everything a session needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The listener kind.
    pub kind: ListenerKind,
    /// This relay's domain.
    pub domain: String,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: u64,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Whether the connection is already TLS (implicit TLS).
    pub is_tls: bool,
    /// Whether STARTTLS can be offered.
    pub can_start_tls: bool,
    /// Whether AUTH is allowed without TLS (loopback with `allow_plaintext_on_loopback`).
    pub allow_plaintext_auth: bool,
}

/// Work the edge must do for the session, then report back.
#[non_exhaustive]
pub enum Action {
    /// Write out the pending output, upgrade to TLS, then call [`Session::tls_established`].
    StartTls,
    /// Check the login, then call [`Session::login_result`].
    Login {
        /// The account address.
        address: String,
        /// The password.
        password: Zeroizing<String>,
    },
    /// Check that a local mailbox exists, then call [`Session::recipient_result`].
    CheckRecipient {
        /// The address (lower-cased).
        address: String,
    },
    /// Store the message (one `Store::accept`), then call [`Session::delivery_result`].
    Deliver(Accepted),
    /// Write out the pending output and close the connection.
    Close,
}

/// How a login check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// Logged in (or the account was created).
    Authenticated,
    /// Wrong password, or the account does not exist and was not created.
    Refused,
    /// The store could not answer; try again later.
    Unavailable,
}

/// The mail transaction being built.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    pub(crate) sender: String,
    pub(crate) local: BTreeSet<String>,
    pub(crate) remote: BTreeMap<String, BTreeSet<String>>,
}

impl Transaction {
    pub(crate) fn recipient_count(&self) -> usize {
        self.local.len() + self.remote.values().map(BTreeSet::len).sum::<usize>()
    }
}

/// Where the session is.
pub(crate) enum Phase {
    /// Reading command lines.
    Command,
    /// Skipping the rest of an over-long line.
    DiscardLine,
    /// AUTH PLAIN sent 334; the next line is the credentials.
    AuthResponse,
    /// Receiving the message body.
    Data(Box<DataPhase>),
    /// An action is out with the edge.
    Waiting(Pending),
    /// The session is over.
    Closed,
}

/// What a waiting session waits for.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Tls,
    Login { address: String },
    Recipient { address: String },
    Delivery,
}

/// The body being received.
pub(crate) struct DataPhase {
    receiver: DataReceiver,
    body: Vec<u8>,
    is_oversize: bool,
}

impl DataPhase {
    /// Bytes of body kept so far.
    #[cfg(test)]
    pub(crate) fn body_len(&self) -> usize {
        self.body.len()
    }
}

/// One SMTP session.
pub struct Session {
    pub(crate) config: SessionConfig,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) peer: IpAddr,
    pub(crate) is_tls: bool,
    pub(crate) greeted: bool,
    pub(crate) login: Option<String>,
    pub(crate) transaction: Option<Transaction>,
    pub(crate) phase: Phase,
    pub(crate) errors: u32,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Session {
    /// A new session; the greeting is already in the output.
    pub fn new(
        config: SessionConfig,
        limiter: Arc<Limiter>,
        metrics: Arc<Metrics>,
        peer: IpAddr,
    ) -> Self {
        let mut session = Self {
            is_tls: config.is_tls,
            config,
            limiter,
            metrics,
            peer,
            greeted: false,
            login: None,
            transaction: None,
            phase: Phase::Command,
            errors: 0,
            input: Vec::new(),
            output: Vec::new(),
        };
        let greeting = format!("{} ESMTP kith-relay", session.config.domain);
        session.reply(Reply::new(220, [0, 0, 0], &greeting));
        session
    }

    /// Bytes received from the client.
    pub fn receive(&mut self, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Closed) {
            self.input.extend_from_slice(bytes);
        }
    }

    /// Replies to send; the edge writes them out.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether the session is over (after the output is written, close the connection).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether a message body is being received (shutdown lets it finish).
    pub fn is_busy(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::Waiting(_)) || self.transaction.is_some()
    }

    /// Processes buffered input until the session needs the edge to do something, or needs
    /// more input (`None`).
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        loop {
            match &mut self.phase {
                Phase::Closed | Phase::Waiting(_) => return None,
                Phase::Data(_) => {
                    if let Some(action) = self.poll_data() {
                        return Some(action);
                    }
                    if matches!(self.phase, Phase::Data(_)) {
                        return None;
                    }
                }
                Phase::DiscardLine => {
                    let Some(newline) = self.input.iter().position(|&b| b == b'\n') else {
                        // All of it belongs to the over-long line.
                        self.input.clear();
                        return None;
                    };
                    self.input.drain(..=newline);
                    self.phase = Phase::Command;
                    if let Some(action) = self.bad_command(Reply::LINE_TOO_LONG) {
                        return Some(action);
                    }
                }
                Phase::Command | Phase::AuthResponse => {
                    let Some(line) = self.next_line() else {
                        return self.overlong_line(now);
                    };
                    let action = if matches!(self.phase, Phase::AuthResponse) {
                        self.phase = Phase::Command;
                        self.auth_response(&line, now)
                    } else {
                        self.command(&line, now)
                    };
                    if action.is_some() {
                        return action;
                    }
                }
            }
        }
    }

    /// Takes one complete line (with its line ending) from the input.
    fn next_line(&mut self) -> Option<Vec<u8>> {
        let newline = self.input.iter().take(MAX_LINE).position(|&b| b == b'\n')?;
        Some(self.input.drain(..=newline).collect())
    }

    /// No complete line yet: if the partial one is already too long, skip it.
    fn overlong_line(&mut self, now: Instant) -> Option<Action> {
        if self.input.len() < MAX_LINE {
            return None;
        }
        self.phase = Phase::DiscardLine;
        self.poll(now)
    }

    fn poll_data(&mut self) -> Option<Action> {
        let Phase::Data(data) = &mut self.phase else {
            return None;
        };
        let mut bytes = self.input.iter();
        let finished = data.receiver.ingest(&mut bytes, &mut data.body);
        let consumed = self.input.len() - bytes.as_slice().len();
        self.input.drain(..consumed);
        if data.body.len() as u64 > self.config.max_message_bytes {
            // Over the limit: stop keeping the body; read on to the end and refuse it.
            data.is_oversize = true;
            data.body = Vec::new();
        }
        if !finished {
            return None;
        }
        let Phase::Data(data) = std::mem::replace(&mut self.phase, Phase::Command) else {
            unreachable!("checked above");
        };
        let transaction = self.transaction.take().unwrap_or_default();
        if data.is_oversize {
            self.metrics.rejected(Rejection::TooLarge);
            self.reply(Reply::TOO_LARGE);
            return None;
        }
        self.end_of_data(transaction, data.body)
    }

    /// Starts receiving a message body.
    pub(crate) fn start_data(&mut self) {
        self.phase = Phase::Data(Box::new(DataPhase {
            receiver: DataReceiver::new(),
            body: Vec::new(),
            is_oversize: false,
        }));
    }

    /// The message is complete: check it and hand it to the edge for storing.
    fn end_of_data(&mut self, transaction: Transaction, body: Vec<u8>) -> Option<Action> {
        let body = if self.config.kind.is_submission() {
            super::headers::strip_trace_headers(&body)
        } else {
            body
        };
        let facts = super::headers::header_facts(&body);
        if let Some(login) = &self.login {
            if facts.from.as_deref() != Some(login.as_str()) {
                self.metrics.rejected(Rejection::SenderMismatch);
                self.reply(Reply::FROM_MISMATCH);
                return None;
            }
        }
        if super::envelope::is_encrypted_envelope(&body).is_err() {
            self.metrics.rejected(Rejection::NotEncrypted);
            self.reply(Reply::ENCRYPTION_NEEDED);
            return None;
        }
        let accepted = Accepted {
            sender: transaction.sender,
            local: transaction.local.into_iter().collect(),
            remote: transaction
                .remote
                .into_iter()
                .map(|(domain, rcpts)| (domain, rcpts.into_iter().collect()))
                .collect(),
            msgid: facts.message_id,
            body: Bytes::from(body),
        };
        self.phase = Phase::Waiting(Pending::Delivery);
        Some(Action::Deliver(accepted))
    }

    /// The TLS handshake after STARTTLS succeeded: the session starts over (RFC 3207).
    pub fn tls_established(&mut self) {
        self.is_tls = true;
        self.greeted = false;
        self.login = None;
        self.transaction = None;
        self.input.clear();
        self.phase = Phase::Command;
    }

    /// The result of [`Action::Login`].
    pub fn login_result(&mut self, result: LoginResult, now: Instant) {
        let Phase::Waiting(Pending::Login { address }) =
            std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return;
        };
        match result {
            LoginResult::Authenticated => {
                self.login = Some(address);
                self.reply(Reply::AUTH_OK);
            }
            LoginResult::Unavailable => self.reply(Reply::TEMPORARY_FAILURE),
            LoginResult::Refused => {
                self.limiter.record_failed_login(self.peer, now);
                self.metrics.rejected(Rejection::BadLogin);
                self.reply(Reply::AUTH_FAILED);
            }
        }
    }

    /// The result of [`Action::CheckRecipient`]: `Some(exists)`, or `None` if the store
    /// could not answer.
    pub fn recipient_result(&mut self, exists: Option<bool>) {
        let Phase::Waiting(Pending::Recipient { address }) =
            std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return;
        };
        match (exists, self.transaction.as_mut()) {
            (Some(true), Some(transaction)) => {
                transaction.local.insert(address);
                self.reply(Reply::OK);
            }
            (Some(false), _) => {
                self.metrics.rejected(Rejection::UnknownRecipient);
                self.reply(Reply::NO_SUCH_USER);
            }
            _ => self.reply(Reply::TEMPORARY_FAILURE),
        }
    }

    /// The result of [`Action::Deliver`]: `Ok(())` once durably stored.
    pub fn delivery_result(&mut self, result: Result<(), crate::errors::StoreError>) {
        if !matches!(self.phase, Phase::Waiting(Pending::Delivery)) {
            return;
        }
        self.phase = Phase::Command;
        match result {
            Ok(()) => {
                self.metrics.message_in();
                self.reply(Reply::QUEUED);
            }
            Err(crate::errors::StoreError::LargerThanQuota { .. }) => {
                self.metrics.rejected(Rejection::TooLarge);
                self.reply(Reply::MAILBOX_FULL);
            }
            Err(_) => self.reply(Reply::TEMPORARY_FAILURE),
        }
    }

    /// Appends a reply to the output.
    pub(crate) fn reply(&mut self, reply: Reply<'_>) {
        reply.write_to(&mut self.output);
    }

    /// Appends an EHLO reply.
    pub(crate) fn write_ehlo(&mut self, ehlo: &smtp_proto::EhloResponse<String>) {
        let _ = ehlo.write(&mut self.output);
    }

    /// Counts a bad command; closes the session after too many.
    pub(crate) fn bad_command(&mut self, reply: Reply<'_>) -> Option<Action> {
        self.metrics.rejected(Rejection::BadCommand);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.reply(Reply::TOO_MANY_ERRORS);
            return Some(self.close());
        }
        self.reply(reply);
        None
    }

    /// Ends the session.
    pub(crate) fn close(&mut self) -> Action {
        self.phase = Phase::Closed;
        self.input.clear();
        Action::Close
    }

    /// Sets the phase to waiting for `pending`.
    pub(crate) fn wait_for(&mut self, pending: Pending) {
        self.phase = Phase::Waiting(pending);
    }

    /// Drops input pipelined after STARTTLS (it must not survive the upgrade).
    pub(crate) fn discard_input(&mut self) {
        self.input.clear();
    }
}
