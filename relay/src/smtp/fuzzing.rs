//! Entry points of the cargo-fuzz targets in `relay/fuzz` (and of their regression tests):
//! the session state machine and the header filter, fed arbitrary bytes.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::session::{Action, ListenerKind, LoginResult, Session, SessionConfig};
use crate::config::Limits;
use crate::limits::Limiter;
use crate::metrics::Metrics;

const FUZZ_MAX_MESSAGE: u64 = 4096;

/// Drives one session with `data`: the first byte picks the listener, whether plaintext
/// AUTH is allowed and the chunk size; the rest is the client's bytes. Store results are
/// derived from the request, so every path is reachable. Panics if an invariant breaks.
pub fn drive_session(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let kind = match selector % 3 {
        0 => ListenerKind::Submissions,
        1 => ListenerKind::Submission,
        _ => ListenerKind::Inbound,
    };
    let config = SessionConfig {
        kind,
        domain: "relay.test".into(),
        max_message_bytes: FUZZ_MAX_MESSAGE,
        max_recipients: 4,
        is_tls: kind == ListenerKind::Submissions,
        can_start_tls: kind != ListenerKind::Submissions,
        allow_plaintext_auth: selector & 4 != 0,
    };
    let limits = Limits {
        failed_logins_per_ip_per_minute: 3,
        send_per_minute: 5,
        ..Limits::default()
    };
    let mut session = Session::new(
        config,
        Arc::new(Limiter::new(limits)),
        Arc::new(Metrics::default()),
        IpAddr::from([127, 0, 0, 1]),
    );
    let now = Instant::now();
    for chunk in input.chunks(1 + usize::from(selector >> 3)) {
        session.receive(chunk);
        while let Some(action) = session.poll(now) {
            if !answer(&mut session, action, now) {
                return;
            }
        }
        check_replies(&session.take_output());
    }
}

/// Answers an action as a store would; `false` when the session closed.
fn answer(session: &mut Session, action: Action, now: Instant) -> bool {
    match action {
        Action::Login { password, .. } => {
            let result = match password.len() % 3 {
                0 => LoginResult::Authenticated,
                1 => LoginResult::Refused,
                _ => LoginResult::Unavailable,
            };
            session.login_result(result, now);
        }
        Action::CheckRecipient { address } => {
            assert!(
                address.ends_with("@relay.test"),
                "non-local recipient checked"
            );
            session.recipient_result(Some(address.len() % 2 == 0));
        }
        Action::Deliver(accepted) => {
            assert!(!accepted.local.is_empty() || !accepted.remote.is_empty());
            assert!(accepted.body.len() as u64 <= FUZZ_MAX_MESSAGE);
            session.delivery_result(Ok(()));
        }
        Action::StartTls => session.tls_established(),
        Action::Close => {
            check_replies(&session.take_output());
            assert!(session.is_closed());
            return false;
        }
    }
    true
}

/// Every reply line is `NNN<space or dash>...CRLF`.
fn check_replies(output: &[u8]) {
    for line in output.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "reply without CRLF: {line:?}");
        assert!(
            line.len() >= 5 && line[..3].iter().all(u8::is_ascii_digit),
            "malformed reply {line:?}"
        );
    }
}

/// Runs the header filter on `data` and checks that it only removed bytes: the output is
/// the input with some ranges cut out, never anything added or re-encoded.
pub fn filter_headers(data: &[u8]) {
    let filtered = super::headers::strip_trace_headers(data);
    let mut rest = data.iter();
    for byte in &filtered {
        assert!(
            rest.any(|b| b == byte),
            "the filter produced bytes that are not in its input"
        );
    }
    let _ = super::headers::header_facts(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_corpus_runs_clean() {
        for dir in ["smtp_session", "smtp_headers"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/corpus")
                .join(dir);
            let mut seen = 0;
            for entry in std::fs::read_dir(&path).unwrap() {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                if dir == "smtp_session" {
                    drive_session(&data);
                } else {
                    filter_headers(&data);
                }
                seen += 1;
            }
            assert!(seen > 0, "empty corpus {dir}");
        }
    }
}
