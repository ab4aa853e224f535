//! The IMAP session as a sans-IO state machine: client bytes in, response bytes and store
//! requests out.
//!
//! The edge ([`super::edge`]) feeds bytes with [`Session::receive`] and then calls
//! [`Session::next_action`] until it asks for more input. An [`Action::Store`] must be
//! answered with [`Session::complete`] before the next call. The session never touches a
//! socket, a clock or the database, so the fuzz target and unit tests drive it directly.
use bytes::Bytes;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::IntoStatic;
use imap_codec::{AuthenticateDataCodec, CommandCodec, IdleDoneCodec};
use zeroize::Zeroizing;

use super::render::{self, Out};
use crate::store::{Flags, FlagsMode, MailboxStatus, MessageMeta};

/// Largest command line (literals included) a client may send, in bytes. We have no APPEND,
/// so commands are small; 64 KiB is Dovecot's line limit.
pub(crate) const MAX_COMMAND_BYTES: u32 = 64 * 1024;

/// What the session is allowed to offer on this connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionConfig {
    /// The connection is already encrypted (implicit TLS, or after STARTTLS).
    pub(crate) is_tls: bool,
    /// STARTTLS may be offered (plain listener).
    pub(crate) offers_starttls: bool,
    /// LOGIN/AUTHENTICATE are allowed without TLS (loopback, operator's choice).
    pub(crate) allows_plaintext_auth: bool,
}

/// What the edge must do next.
#[derive(Debug)]
pub(crate) enum Action {
    /// Write these bytes to the client (and flush).
    Send(Vec<u8>),
    /// Run this store request and hand the answer to [`Session::complete`].
    Store(Request),
    /// Wait for more client bytes.
    NeedInput,
    /// In IDLE: wait for client bytes or a mailbox change ([`Session::mailbox_changed`]).
    Idle,
    /// Start the TLS handshake on the raw stream, then call [`Session::tls_started`].
    StartTls,
    /// Close the connection.
    Close,
}

/// A store operation the session needs; the edge knows which mailbox is logged in.
#[derive(Debug)]
pub(crate) enum Request {
    /// Check (and maybe create) an account.
    Login {
        /// The address given by the client.
        address: String,
        /// The password given by the client.
        password: Zeroizing<String>,
    },
    /// Mailbox status and every message (SELECT, EXAMINE, STATUS).
    Status,
    /// Every message of the mailbox.
    List,
    /// The whole message with this UID.
    Body(u32),
    /// Change flags.
    SetFlags(Vec<u32>, Flags, FlagsMode),
    /// Remove `\Deleted` messages (only these UIDs if given).
    Expunge(Option<Vec<u32>>),
}

/// The outcome of a login as the edge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginResult {
    /// Logged in (or the account was created).
    Accepted,
    /// Wrong password, or the account does not exist and was not created.
    Rejected,
    /// Too many failed logins from this address; the connection will be closed.
    RateLimited,
}

/// The edge's answer to a [`Request`].
#[derive(Debug)]
pub(crate) enum Reply {
    /// Answer to [`Request::Login`].
    Login(LoginResult),
    /// Answer to [`Request::Status`].
    Status(MailboxStatus, Vec<MessageMeta>),
    /// Answer to [`Request::List`].
    List(Vec<MessageMeta>),
    /// Answer to [`Request::Body`]; `None` if the message is gone.
    Body(Option<Bytes>),
    /// Answer to [`Request::SetFlags`]: new flags of the messages that exist.
    Flags(Vec<(u32, Flags)>),
    /// Answer to [`Request::Expunge`]: the UIDs removed.
    Expunged(Vec<u32>),
    /// The store failed; the command gets a NO.
    Failed,
}

/// Where a session is in RFC 3501's state diagram.
#[derive(Debug)]
pub(super) enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Selection),
}

/// The selected mailbox as this session has announced it to the client.
#[derive(Debug)]
pub(super) struct Selection {
    /// Opened with EXAMINE.
    pub(super) read_only: bool,
    /// UIDs by sequence number (index + 1), ascending.
    pub(super) uids: Vec<u32>,
}

/// What kind of input the session expects next.
#[derive(Debug)]
enum Mode {
    Command,
    AuthenticateData(Tag<'static>),
    Idle(Tag<'static>),
}

/// A command waiting for a store reply.
#[derive(Debug)]
pub(super) enum Pending {
    Login(Tag<'static>),
    Select {
        tag: Tag<'static>,
        read_only: bool,
    },
    Status(Tag<'static>, Vec<render::StatusItem>),
    /// A selected-state command that needs the message list first.
    Listed(Box<super::selected::Deferred>),
    Fetch(super::selected::FetchJob),
    Store(super::selected::StoreJob),
    Expunge {
        tag: Tag<'static>,
        close: bool,
    },
    IdleRefresh,
}

/// One IMAP connection's protocol state.
#[derive(Debug)]
pub(crate) struct Session {
    config: SessionConfig,
    framer: Fragmentizer,
    pub(super) state: State,
    mode: Mode,
    pending: Option<Pending>,
    request: Option<Request>,
    pub(super) out: Out,
    closing: bool,
    starting_tls: bool,
    /// Commands answered with BAD since the edge last asked (for metrics).
    pub(super) rejected: u32,
}

impl Session {
    /// A new session; the greeting is queued.
    pub(crate) fn new(config: SessionConfig) -> Self {
        let mut session = Self {
            config,
            framer: Fragmentizer::new(MAX_COMMAND_BYTES),
            state: State::NotAuthenticated,
            mode: Mode::Command,
            pending: None,
            request: None,
            out: Out::default(),
            closing: false,
            starting_tls: false,
            rejected: 0,
        };
        session.out.greeting(&session.capabilities());
        session
    }

    /// A session that refuses the connection at once (too many connections from one IP).
    pub(crate) fn refusing(text: &str) -> Self {
        let mut session = Self::new(SessionConfig {
            is_tls: false,
            offers_starttls: false,
            allows_plaintext_auth: false,
        });
        session.out = Out::default();
        session.out.bye(text);
        session.closing = true;
        session
    }

    /// Client bytes arrived.
    pub(crate) fn receive(&mut self, bytes: &[u8]) {
        self.framer.enqueue_bytes(bytes);
    }

    /// The client went quiet for too long.
    pub(crate) fn timed_out(&mut self) {
        self.out.bye("Autologout; idle for too long");
        self.closing = true;
    }

    /// The relay is shutting down.
    pub(crate) fn shutting_down(&mut self) {
        self.out.bye("Server shutting down");
        self.closing = true;
    }

    /// The mailbox changed (a delivery); in IDLE, the session asks for the new listing.
    pub(crate) fn mailbox_changed(&mut self) {
        let in_idle = matches!(self.mode, Mode::Idle(_));
        let selected = matches!(self.state, State::Selected(_));
        if in_idle && selected && self.pending.is_none() && self.request.is_none() {
            self.ask(Request::List, Pending::IdleRefresh);
        }
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub(crate) fn tls_started(&mut self) {
        self.config.is_tls = true;
        self.starting_tls = false;
    }

    /// Whether the session waits in IDLE (for the edge's longer timeout).
    pub(crate) fn is_idling(&self) -> bool {
        matches!(self.mode, Mode::Idle(_))
    }

    /// The next thing the edge must do.
    pub(crate) fn next_action(&mut self) -> Action {
        loop {
            if !self.out.is_empty() {
                return Action::Send(self.out.take());
            }
            if self.closing {
                return Action::Close;
            }
            if let Some(request) = self.request.take() {
                return Action::Store(request);
            }
            if self.pending.is_some() {
                // The edge broke the contract (asked again without completing): give up.
                debug_assert!(false, "next_action called while a store reply is pending");
                return Action::Close;
            }
            if self.starting_tls {
                return Action::StartTls;
            }
            let Some(fragment) = self.framer.progress() else {
                self.release_idle_buffers();
                return match self.mode {
                    Mode::Idle(_) => Action::Idle,
                    _ => Action::NeedInput,
                };
            };
            self.on_fragment(fragment);
        }
    }

    /// The store's answer to the last [`Action::Store`].
    pub(crate) fn complete(&mut self, reply: Reply) {
        let Some(pending) = self.pending.take() else {
            debug_assert!(false, "a reply without a request");
            return;
        };
        match (pending, reply) {
            (Pending::Login(tag), Reply::Login(result)) => self.logged_in(tag, result),
            (Pending::Select { tag, read_only }, Reply::Status(status, list)) => {
                self.selected(tag, read_only, status, list)
            }
            (Pending::Status(tag, items), Reply::Status(status, _)) => {
                self.out.status_data(&items, &status);
                self.out.ok(tag, "STATUS completed");
            }
            (Pending::IdleRefresh, Reply::List(list)) => self.apply_listing(&list, true),
            (Pending::IdleRefresh, _) => {}
            (pending, reply) => self.complete_selected(pending, reply),
        }
    }

    /// Registers a store request and what to do with its answer.
    pub(super) fn ask(&mut self, request: Request, pending: Pending) {
        self.request = Some(request);
        self.pending = Some(pending);
    }

    /// Drops buffers a waiting session does not need, so that idle connections stay small.
    fn release_idle_buffers(&mut self) {
        if self.framer.message_bytes().is_empty() {
            self.framer = Fragmentizer::new(MAX_COMMAND_BYTES);
        }
    }

    fn on_fragment(&mut self, fragment: FragmentInfo) {
        if let FragmentInfo::Line {
            announcement: Some(LiteralAnnouncement { mode, length }),
            ..
        } = fragment
        {
            self.on_literal_announced(mode, length);
            return;
        }
        if !self.framer.is_message_complete() {
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Command => self.on_command_message(),
            Mode::AuthenticateData(tag) => self.on_authenticate_data(tag),
            Mode::Idle(tag) => self.on_idle_done(tag),
        }
    }

    fn on_literal_announced(&mut self, mode: LiteralMode, length: u32) {
        let fits = (self.framer.message_bytes().len() as u64) + u64::from(length)
            <= u64::from(MAX_COMMAND_BYTES);
        match (mode, fits) {
            (LiteralMode::Sync, true) => self.out.continuation("Ready for literal data"),
            // A non-synchronising literal comes anyway; the framer caps what it keeps.
            (LiteralMode::NonSync, _) => {}
            (LiteralMode::Sync, false) => {
                let tag = self.framer.decode_tag().map(IntoStatic::into_static);
                self.framer.skip_message();
                self.out.bad(tag, Some(Code::TooBig), "Literal too large");
            }
        }
    }

    fn on_command_message(&mut self) {
        let decoded = self
            .framer
            .decode_message(&CommandCodec::default())
            .map(IntoStatic::into_static);
        match decoded {
            Ok(command) => self.on_command(command),
            Err(error) => {
                let too_long = matches!(
                    error,
                    imap_codec::fragmentizer::DecodeMessageError::MessageTooLong { .. }
                );
                let tag = self.framer.decode_tag().map(IntoStatic::into_static);
                let text = if too_long {
                    "Command too long"
                } else {
                    "Unknown or malformed command"
                };
                self.out.bad(tag, None, text);
                self.rejected += 1;
            }
        }
    }

    fn on_authenticate_data(&mut self, tag: Tag<'static>) {
        let data = self
            .framer
            .decode_message(&AuthenticateDataCodec::default())
            .map(|d| match d {
                AuthenticateData::Continue(secret) => {
                    Some(Zeroizing::new(secret.declassify().to_vec()))
                }
                AuthenticateData::Cancel => None,
            });
        match data {
            Ok(Some(bytes)) => self.authenticate_plain(tag, &bytes),
            Ok(None) => self.out.bad(Some(tag), None, "Authentication cancelled"),
            Err(_) => self
                .out
                .bad(Some(tag), None, "Malformed authentication data"),
        }
    }

    fn on_idle_done(&mut self, tag: Tag<'static>) {
        match self.framer.decode_message(&IdleDoneCodec::default()) {
            Ok(_) => self.out.ok(tag, "IDLE terminated"),
            Err(_) => self.out.bad(Some(tag), None, "Expected DONE"),
        }
    }

    fn on_command(&mut self, command: Command<'static>) {
        let Command { tag, body } = command;
        match body {
            CommandBody::Capability => {
                self.out.data(Data::Capability(self.capabilities()));
                self.out.ok(tag, "CAPABILITY completed");
            }
            CommandBody::Noop | CommandBody::Check => self.noop(tag),
            CommandBody::Logout => {
                self.out.bye("Logging out");
                self.out.ok(tag, "LOGOUT completed");
                self.closing = true;
            }
            CommandBody::StartTLS => self.starttls(tag),
            CommandBody::Login { username, password } => {
                let address = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = Zeroizing::new(
                    String::from_utf8_lossy(password.declassify().as_ref()).into_owned(),
                );
                self.login(tag, address, password);
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(
                tag,
                mechanism,
                initial_response.map(|r| r.declassify().to_vec()),
            ),
            _ if matches!(self.state, State::NotAuthenticated) => self.out.no(tag, "Log in first"),
            body => self.on_authenticated_command(tag, body),
        }
    }

    /// Commands of the authenticated state (and, passed on, of the selected state).
    fn on_authenticated_command(&mut self, tag: Tag<'static>, body: CommandBody<'static>) {
        match body {
            CommandBody::Select { mailbox, .. } => self.select(tag, mailbox, false),
            CommandBody::Examine { mailbox, .. } => self.select(tag, mailbox, true),
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.out.list(&reference, &mailbox_wildcard, false);
                self.out.ok(tag, "LIST completed");
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.out.list(&reference, &mailbox_wildcard, true);
                self.out.ok(tag, "LSUB completed");
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => match mailbox {
                Mailbox::Inbox => {
                    let items = render::status_items(&item_names);
                    self.ask(Request::Status, Pending::Status(tag, items));
                }
                Mailbox::Other(_) => self.out.no(tag, "No such mailbox; only INBOX exists"),
            },
            CommandBody::Idle => {
                self.out.continuation("idling");
                self.mode = Mode::Idle(tag);
            }
            body => self.on_selected_command(tag, body),
        }
    }

    fn noop(&mut self, tag: Tag<'static>) {
        if matches!(self.state, State::Selected(_)) {
            self.defer_listed(tag, super::selected::DeferredCommand::Noop, true);
        } else {
            self.out.ok(tag, "NOOP completed");
        }
    }

    fn starttls(&mut self, tag: Tag<'static>) {
        let allowed = !self.config.is_tls
            && self.config.offers_starttls
            && matches!(self.state, State::NotAuthenticated);
        if allowed {
            self.out.ok(tag, "Begin TLS negotiation now");
            // Anything the client pipelined after STARTTLS is plaintext: discard it.
            self.framer = Fragmentizer::new(MAX_COMMAND_BYTES);
            self.starting_tls = true;
        } else {
            self.out.bad(Some(tag), None, "STARTTLS not available");
        }
    }

    fn auth_allowed(&self) -> bool {
        self.config.is_tls || self.config.allows_plaintext_auth
    }

    fn login(&mut self, tag: Tag<'static>, address: String, password: Zeroizing<String>) {
        if !matches!(self.state, State::NotAuthenticated) {
            self.out.bad(Some(tag), None, "Already logged in");
        } else if !self.auth_allowed() {
            self.out
                .no_code(tag, render::code_other("PRIVACYREQUIRED"), "Use TLS first");
        } else {
            self.ask(Request::Login { address, password }, Pending::Login(tag));
        }
    }

    fn authenticate(
        &mut self,
        tag: Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial: Option<Vec<u8>>,
    ) {
        let initial = initial.map(Zeroizing::new);
        if !matches!(self.state, State::NotAuthenticated) {
            self.out.bad(Some(tag), None, "Already logged in");
        } else if !self.auth_allowed() {
            self.out
                .no_code(tag, render::code_other("PRIVACYREQUIRED"), "Use TLS first");
        } else if mechanism != AuthMechanism::Plain {
            self.out.no(tag, "Unsupported mechanism; use PLAIN");
        } else if let Some(initial) = initial {
            self.authenticate_plain(tag, &initial);
        } else {
            self.out.empty_continuation();
            self.mode = Mode::AuthenticateData(tag);
        }
    }

    /// SASL PLAIN: `authzid NUL authcid NUL password`; authzid must be empty or authcid.
    fn authenticate_plain(&mut self, tag: Tag<'static>, message: &[u8]) {
        let mut parts = message.split(|b| *b == 0);
        let (Some(authz), Some(authc), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            self.out.bad(Some(tag), None, "Malformed PLAIN response");
            return;
        };
        let (Ok(authc), Ok(password)) = (std::str::from_utf8(authc), std::str::from_utf8(password))
        else {
            self.out.bad(Some(tag), None, "PLAIN response is not UTF-8");
            return;
        };
        if !authz.is_empty() && authz != authc.as_bytes() {
            self.out.no_code(
                tag,
                render::code_other("AUTHORIZATIONFAILED"),
                "No proxy logins",
            );
            return;
        }
        self.login(tag, authc.to_owned(), Zeroizing::new(password.to_owned()));
    }

    fn logged_in(&mut self, tag: Tag<'static>, result: LoginResult) {
        match result {
            LoginResult::Accepted => {
                self.state = State::Authenticated;
                let caps = self.capabilities();
                self.out.ok_code(tag, Code::Capability(caps), "Logged in");
            }
            LoginResult::Rejected => self.out.no_code(
                tag,
                render::code_other("AUTHENTICATIONFAILED"),
                "Authentication failed",
            ),
            LoginResult::RateLimited => {
                self.out.no_code(
                    tag,
                    render::code_other("UNAVAILABLE"),
                    "Too many failed logins",
                );
                self.out.bye("Too many failed logins; try again later");
                self.closing = true;
            }
        }
    }

    fn select(&mut self, tag: Tag<'static>, mailbox: Mailbox<'static>, read_only: bool) {
        // A SELECT, even a failing one, leaves the selected state first (RFC 3501 6.3.1).
        self.state = State::Authenticated;
        match mailbox {
            Mailbox::Inbox => self.ask(Request::Status, Pending::Select { tag, read_only }),
            Mailbox::Other(_) => self.out.no(tag, "No such mailbox; only INBOX exists"),
        }
    }

    fn selected(
        &mut self,
        tag: Tag<'static>,
        read_only: bool,
        status: MailboxStatus,
        list: Vec<MessageMeta>,
    ) {
        self.out.select_data(&status, &list);
        let uids = list.iter().map(|m| m.uid).collect();
        self.state = State::Selected(Selection { read_only, uids });
        let (code, verb) = if read_only {
            (Code::ReadOnly, "EXAMINE completed")
        } else {
            (Code::ReadWrite, "SELECT completed")
        };
        self.out.ok_code(tag, code, verb);
    }

    /// The capabilities to announce now.
    fn capabilities(
        &self,
    ) -> imap_codec::imap_types::core::Vec1<imap_codec::imap_types::response::Capability<'static>>
    {
        let before_login = matches!(self.state, State::NotAuthenticated);
        render::capabilities(
            before_login && self.auth_allowed(),
            before_login && !self.auth_allowed(),
            before_login && !self.config.is_tls && self.config.offers_starttls,
        )
    }

    /// How many malformed or unknown commands were answered with BAD since the last call.
    pub(crate) fn take_rejected_commands(&mut self) -> u32 {
        std::mem::take(&mut self.rejected)
    }
}
