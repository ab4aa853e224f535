//! Command handling of the SMTP session (parsed by smtp-proto).
use std::time::Instant;

use base64::Engine as _;
use smtp_proto::{EhloResponse, Error as ParseError, MailFrom, RcptTo, Request};
use zeroize::Zeroizing;

use super::reply::Reply;
use super::session::{Action, Pending, Session, Transaction};
use crate::metrics::Rejection;

impl Session {
    /// Handles one complete command line.
    pub(crate) fn command(&mut self, line: &[u8], now: Instant) -> Option<Action> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request.into_owned(),
            Err(ParseError::UnknownCommand) => return self.bad_command(Reply::UNKNOWN_COMMAND),
            Err(ParseError::InvalidSenderAddress | ParseError::InvalidRecipientAddress) => {
                return self.bad_command(Reply::BAD_ADDRESS)
            }
            Err(_) => return self.bad_command(Reply::SYNTAX_ERROR),
        };
        match request {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::StartTls => self.start_tls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response, now),
            Request::Mail { from } => self.mail(from, now),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data(),
            Request::Rset => {
                self.transaction = None;
                self.reply(Reply::OK);
                None
            }
            Request::Noop { .. } => {
                self.reply(Reply::OK);
                None
            }
            Request::Quit => {
                self.reply(Reply::BYE);
                Some(self.close())
            }
            _ => self.bad_command(Reply::NOT_IMPLEMENTED),
        }
    }

    fn ehlo(&mut self, _host: String, is_extended: bool) -> Option<Action> {
        self.greeted = true;
        self.transaction = None;
        if !is_extended {
            let text = format!("{} greets you", self.config.domain);
            self.reply(Reply::new(250, [0, 0, 0], &text));
            return None;
        }
        let mut ehlo = EhloResponse::new(self.config.domain.clone());
        ehlo.capabilities = smtp_proto::EXT_PIPELINING
            | smtp_proto::EXT_SIZE
            | smtp_proto::EXT_ENHANCED_STATUS_CODES
            | smtp_proto::EXT_8BIT_MIME;
        ehlo.size = usize::try_from(self.config.max_message_bytes).unwrap_or(usize::MAX);
        if !self.is_tls && self.config.can_start_tls {
            ehlo.capabilities |= smtp_proto::EXT_START_TLS;
        }
        if self.may_auth() && self.login.is_none() {
            ehlo.capabilities |= smtp_proto::EXT_AUTH;
            ehlo.auth_mechanisms = smtp_proto::AUTH_PLAIN;
        }
        self.write_ehlo(&ehlo);
        None
    }

    /// Whether AUTH may be used now: on submission, over TLS (or allowed plaintext).
    fn may_auth(&self) -> bool {
        self.config.kind.is_submission() && (self.is_tls || self.config.allow_plaintext_auth)
    }

    fn start_tls(&mut self) -> Option<Action> {
        if self.is_tls || !self.config.can_start_tls {
            return self.bad_command(Reply::TLS_UNAVAILABLE);
        }
        self.discard_input();
        self.reply(Reply::START_TLS);
        self.wait_for(Pending::Tls);
        Some(Action::StartTls)
    }

    fn auth(&mut self, mechanism: u64, initial: &str, now: Instant) -> Option<Action> {
        if !self.config.kind.is_submission() {
            return self.bad_command(Reply::NO_AUTH_HERE);
        }
        if !self.may_auth() {
            return self.bad_command(Reply::ENCRYPTION_REQUIRED);
        }
        if self.login.is_some() || self.transaction.is_some() {
            return self.bad_command(Reply::ALREADY_AUTHENTICATED);
        }
        if mechanism != smtp_proto::AUTH_PLAIN {
            return self.bad_command(Reply::AUTH_MECHANISM);
        }
        if initial.is_empty() {
            self.reply(Reply::AUTH_CONTINUE);
            self.phase = super::session::Phase::AuthResponse;
            return None;
        }
        self.check_credentials(initial.as_bytes(), now)
    }

    /// The line after `334`: the base64 AUTH PLAIN credentials, or `*` to cancel.
    pub(crate) fn auth_response(&mut self, line: &[u8], now: Instant) -> Option<Action> {
        let line = Zeroizing::new(line.to_vec());
        let trimmed = line.trim_ascii();
        if trimmed == b"*" {
            return self.bad_command(Reply::AUTH_CANCELLED);
        }
        self.check_credentials(trimmed, now)
    }

    fn check_credentials(&mut self, encoded: &[u8], now: Instant) -> Option<Action> {
        if !self.limiter.may_try_login(self.peer, now) {
            self.metrics.rejected(Rejection::LoginRateLimited);
            self.reply(Reply::TOO_MANY_LOGINS);
            return Some(self.close());
        }
        let Some((address, password)) = decode_plain(encoded) else {
            return self.bad_command(Reply::AUTH_SYNTAX);
        };
        let address = address.to_ascii_lowercase();
        self.wait_for(Pending::Login {
            address: address.clone(),
        });
        Some(Action::Login { address, password })
    }

    fn mail(&mut self, from: MailFrom<String>, now: Instant) -> Option<Action> {
        if !self.greeted {
            return self.bad_command(Reply::GREET_FIRST);
        }
        if self.transaction.is_some() {
            return self.bad_command(Reply::NESTED_MAIL);
        }
        let sender = from.address.to_ascii_lowercase();
        if self.config.kind.is_submission() {
            let Some(login) = self.login.clone() else {
                self.reply(Reply::AUTH_REQUIRED);
                return None;
            };
            if sender != login {
                self.metrics.rejected(Rejection::SenderMismatch);
                self.reply(Reply::SENDER_MISMATCH);
                return None;
            }
        }
        if from.size as u64 > self.config.max_message_bytes {
            self.metrics.rejected(Rejection::TooLarge);
            self.reply(Reply::TOO_LARGE);
            return None;
        }
        if let Some(login) = &self.login {
            if !self.limiter.try_send(login, now) {
                self.metrics.rejected(Rejection::RateLimited);
                self.reply(Reply::RATE_LIMITED);
                return None;
            }
        }
        self.transaction = Some(Transaction {
            sender,
            ..Transaction::default()
        });
        self.reply(Reply::OK);
        None
    }

    fn rcpt(&mut self, to: RcptTo<String>) -> Option<Action> {
        let Some(transaction) = &self.transaction else {
            return self.bad_command(Reply::NO_TRANSACTION);
        };
        if transaction.recipient_count() >= self.config.max_recipients {
            self.metrics.rejected(Rejection::TooManyRecipients);
            self.reply(Reply::TOO_MANY_RECIPIENTS);
            return None;
        }
        let address = to.address.to_ascii_lowercase();
        let Some((local_part, domain)) = address.rsplit_once('@') else {
            return self.bad_command(Reply::BAD_ADDRESS);
        };
        if local_part.is_empty() || domain.is_empty() {
            return self.bad_command(Reply::BAD_ADDRESS);
        }
        if domain == self.config.domain.to_ascii_lowercase() {
            self.wait_for(Pending::Recipient {
                address: address.clone(),
            });
            return Some(Action::CheckRecipient { address });
        }
        if !self.config.kind.is_submission() {
            self.metrics.rejected(Rejection::UnknownRecipient);
            self.reply(Reply::RELAY_DENIED);
            return None;
        }
        let domain = domain.to_owned();
        if let Some(transaction) = self.transaction.as_mut() {
            transaction
                .remote
                .entry(domain)
                .or_default()
                .insert(address);
        }
        self.reply(Reply::OK);
        None
    }

    fn data(&mut self) -> Option<Action> {
        let Some(transaction) = &self.transaction else {
            return self.bad_command(Reply::NO_TRANSACTION);
        };
        if transaction.recipient_count() == 0 {
            return self.bad_command(Reply::NO_RECIPIENTS);
        }
        self.reply(Reply::START_DATA);
        self.start_data();
        None
    }
}

/// Decodes AUTH PLAIN credentials (`authzid NUL authcid NUL password`, base64). An
/// authorization identity other than the login is refused.
fn decode_plain(encoded: &[u8]) -> Option<(String, Zeroizing<String>)> {
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    );
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let authcid = std::str::from_utf8(authcid).ok()?;
    if !authzid.is_empty() && authzid != authcid.as_bytes() {
        return None;
    }
    let password = Zeroizing::new(std::str::from_utf8(password).ok()?.to_owned());
    if authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some((authcid.to_owned(), password))
}
