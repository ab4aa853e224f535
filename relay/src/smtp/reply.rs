//! SMTP replies the relay sends, each with its enhanced status code (RFC 3463).
use std::io::Write as _;

/// One SMTP reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The reply code.
    pub code: u16,
    /// The enhanced status code; `[0, 0, 0]` for none (greeting, 334, 354).
    pub status: [u8; 3],
    /// The text.
    pub text: &'a str,
}

impl<'a> Reply<'a> {
    /// A reply.
    pub const fn new(code: u16, status: [u8; 3], text: &'a str) -> Self {
        Self { code, status, text }
    }

    /// Appends the reply line to `out` (smtp-proto writes the enhanced code).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if self.status == [0, 0, 0] {
            let _ = write!(out, "{} {}\r\n", self.code, self.text);
        } else {
            let [a, b, c] = self.status;
            let _ = smtp_proto::Response::new(self.code, a, b, c, self.text).write(out);
        }
    }

    pub(crate) const OK: Reply<'static> = Reply::new(250, [2, 0, 0], "OK");
    pub(crate) const QUEUED: Reply<'static> = Reply::new(250, [2, 0, 0], "OK: stored");
    pub(crate) const BYE: Reply<'static> = Reply::new(221, [2, 0, 0], "Bye");
    pub(crate) const START_DATA: Reply<'static> =
        Reply::new(354, [0, 0, 0], "End data with <CR><LF>.<CR><LF>");
    pub(crate) const AUTH_CONTINUE: Reply<'static> = Reply::new(334, [0, 0, 0], "");
    pub(crate) const AUTH_OK: Reply<'static> =
        Reply::new(235, [2, 7, 0], "Authentication successful");
    pub(crate) const START_TLS: Reply<'static> = Reply::new(220, [2, 0, 0], "Ready to start TLS");
    pub(crate) const AUTH_FAILED: Reply<'static> =
        Reply::new(535, [5, 7, 8], "Authentication credentials invalid");
    pub(crate) const AUTH_REQUIRED: Reply<'static> =
        Reply::new(530, [5, 7, 0], "Authentication required");
    pub(crate) const ENCRYPTION_REQUIRED: Reply<'static> = Reply::new(
        538,
        [5, 7, 11],
        "Encryption required for requested authentication mechanism",
    );
    pub(crate) const AUTH_MECHANISM: Reply<'static> =
        Reply::new(504, [5, 5, 4], "Only AUTH PLAIN is supported");
    pub(crate) const AUTH_CANCELLED: Reply<'static> =
        Reply::new(501, [5, 7, 0], "Authentication cancelled");
    pub(crate) const AUTH_SYNTAX: Reply<'static> =
        Reply::new(501, [5, 5, 2], "Cannot decode AUTH PLAIN credentials");
    pub(crate) const ALREADY_AUTHENTICATED: Reply<'static> =
        Reply::new(503, [5, 5, 1], "Already authenticated");
    pub(crate) const NO_AUTH_HERE: Reply<'static> =
        Reply::new(502, [5, 5, 1], "AUTH is not offered on this port");
    pub(crate) const TOO_MANY_LOGINS: Reply<'static> =
        Reply::new(421, [4, 7, 0], "Too many failed logins, try again later");
    pub(crate) const TOO_MANY_CONNECTIONS: Reply<'static> =
        Reply::new(421, [4, 7, 0], "Too many connections from your address");
    pub(crate) const TOO_MANY_ERRORS: Reply<'static> =
        Reply::new(421, [4, 7, 0], "Too many errors, closing connection");
    pub(crate) const TIMEOUT: Reply<'static> =
        Reply::new(421, [4, 4, 2], "Timeout, closing connection");
    pub(crate) const SHUTTING_DOWN: Reply<'static> =
        Reply::new(421, [4, 3, 2], "Server shutting down");
    pub(crate) const GREET_FIRST: Reply<'static> = Reply::new(503, [5, 5, 1], "Send EHLO first");
    pub(crate) const NESTED_MAIL: Reply<'static> =
        Reply::new(503, [5, 5, 1], "Transaction already started");
    pub(crate) const NO_TRANSACTION: Reply<'static> =
        Reply::new(503, [5, 5, 1], "Send MAIL FROM first");
    pub(crate) const NO_RECIPIENTS: Reply<'static> =
        Reply::new(554, [5, 5, 1], "No valid recipients");
    pub(crate) const SENDER_MISMATCH: Reply<'static> = Reply::new(
        553,
        [5, 7, 1],
        "Sender address must be the authenticated login",
    );
    pub(crate) const FROM_MISMATCH: Reply<'static> = Reply::new(
        550,
        [5, 7, 1],
        "From header must be the authenticated login",
    );
    pub(crate) const ENCRYPTION_NEEDED: Reply<'static> = Reply::new(
        523,
        [5, 7, 1],
        "Encryption Needed: Invalid Unencrypted Mail",
    );
    pub(crate) const TOO_LARGE: Reply<'static> =
        Reply::new(552, [5, 3, 4], "Message too big for system");
    pub(crate) const MAILBOX_FULL: Reply<'static> =
        Reply::new(552, [5, 2, 2], "Message larger than the mailbox quota");
    pub(crate) const TOO_MANY_RECIPIENTS: Reply<'static> =
        Reply::new(452, [4, 5, 3], "Too many recipients");
    pub(crate) const RATE_LIMITED: Reply<'static> =
        Reply::new(450, [4, 7, 1], "Sending rate exceeded, try again later");
    pub(crate) const NO_SUCH_USER: Reply<'static> =
        Reply::new(550, [5, 1, 1], "No such mailbox here");
    pub(crate) const RELAY_DENIED: Reply<'static> =
        Reply::new(550, [5, 7, 1], "Relaying denied: only local recipients");
    pub(crate) const BAD_ADDRESS: Reply<'static> = Reply::new(501, [5, 1, 3], "Bad address syntax");
    pub(crate) const TEMPORARY_FAILURE: Reply<'static> =
        Reply::new(451, [4, 3, 0], "Temporary failure, try again later");
    pub(crate) const UNKNOWN_COMMAND: Reply<'static> =
        Reply::new(500, [5, 5, 2], "Command not recognised");
    pub(crate) const NOT_IMPLEMENTED: Reply<'static> =
        Reply::new(502, [5, 5, 1], "Command not implemented");
    pub(crate) const SYNTAX_ERROR: Reply<'static> =
        Reply::new(501, [5, 5, 4], "Syntax error in parameters");
    pub(crate) const LINE_TOO_LONG: Reply<'static> = Reply::new(500, [5, 5, 2], "Line too long");
    pub(crate) const TLS_UNAVAILABLE: Reply<'static> =
        Reply::new(502, [5, 5, 1], "STARTTLS not available");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_formatted_with_and_without_status() {
        let mut out = Vec::new();
        Reply::ENCRYPTION_NEEDED.write_to(&mut out);
        Reply::START_DATA.write_to(&mut out);
        Reply::ENCRYPTION_REQUIRED.write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "523 5.7.1 Encryption Needed: Invalid Unencrypted Mail\r\n\
             354 End data with <CR><LF>.<CR><LF>\r\n\
             538 5.7.11 Encryption required for requested authentication mechanism\r\n"
        );
    }
}
