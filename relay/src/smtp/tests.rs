//! The session state machine driven directly: bytes in, replies and actions out.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::config::Limits;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::store::Accepted;

const LOGIN: &str = "abcdefghi@relay.test";

fn config(kind: ListenerKind) -> SessionConfig {
    SessionConfig {
        kind,
        domain: "relay.test".into(),
        max_message_bytes: 2_000,
        max_recipients: 3,
        is_tls: kind == ListenerKind::Submissions,
        can_start_tls: kind != ListenerKind::Submissions,
        allow_plaintext_auth: false,
    }
}

fn session(kind: ListenerKind) -> Session {
    let limits = Limits {
        send_per_minute: 2,
        failed_logins_per_ip_per_minute: 2,
        ..Limits::default()
    };
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    Session::new(
        config(kind),
        Arc::new(Limiter::new(limits)),
        Arc::new(Metrics::default()),
        peer,
    )
}

/// Feeds `input`, answering actions the way a store with `LOGIN` (password "password123")
/// and local account `rcpt00001@relay.test` would; returns replies and the messages stored.
fn exchange(session: &mut Session, input: &str) -> (String, Vec<Accepted>) {
    session.receive(input.as_bytes());
    let mut stored = Vec::new();
    while let Some(action) = session.poll(Instant::now()) {
        match action {
            Action::Login { address, password } => {
                let ok = address == LOGIN && password.as_str() == "password123";
                let result = if ok {
                    LoginResult::Authenticated
                } else {
                    LoginResult::Refused
                };
                session.login_result(result, Instant::now());
            }
            Action::CheckRecipient { address } => {
                session.recipient_result(Some(address == "rcpt00001@relay.test"));
            }
            Action::Deliver(accepted) => {
                stored.push(accepted);
                session.delivery_result(Ok(()));
            }
            Action::StartTls => session.tls_established(),
            Action::Close => break,
        }
    }
    (String::from_utf8(session.take_output()).unwrap(), stored)
}

fn codes(replies: &str) -> Vec<&str> {
    replies
        .lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect()
}

fn auth_plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let raw = format!("\0{user}\0{password}");
    format!(
        "AUTH PLAIN {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn envelope(from: &str) -> String {
    let armored = include_str!("../../tests/fixtures/symmetric-1.asc").replace('\n', "\r\n");
    format!(
        "From: <{from}>\r\nReceived: from laptop\r\nMessage-ID: <m1@relay.test>\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"kith-B0undary\"\r\n\r\n\
         --kith-B0undary\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --kith-B0undary\r\nContent-Type: application/octet-stream\r\n\r\n{armored}\r\n--kith-B0undary--\r\n.\r\n"
    )
}

fn logged_in() -> Session {
    let mut s = session(ListenerKind::Submissions);
    let (out, _) = exchange(
        &mut s,
        &format!("EHLO c\r\n{}", auth_plain(LOGIN, "password123")),
    );
    assert!(out.contains("AUTH PLAIN"), "{out}");
    assert_eq!(codes(&out), ["220", "250", "235"]);
    s
}

#[test]
fn submission_stores_one_copy_for_local_and_one_per_remote_domain() {
    let mut s = logged_in();
    let input = format!(
        "MAIL FROM:<{LOGIN}> SIZE=1000\r\nRCPT TO:<rcpt00001@relay.test>\r\n\
         RCPT TO:<x@other.test>\r\nRCPT TO:<y@other.test>\r\nDATA\r\n{}",
        envelope(LOGIN)
    );
    let (out, stored) = exchange(&mut s, &input);
    assert_eq!(
        codes(&out),
        ["250", "250", "250", "250", "354", "250"],
        "{out}"
    );
    let [message] = &stored[..] else {
        panic!("expected one message")
    };
    assert_eq!(message.local, ["rcpt00001@relay.test"]);
    assert_eq!(
        message.remote,
        [(
            "other.test".to_owned(),
            vec!["x@other.test".to_owned(), "y@other.test".to_owned()]
        )]
    );
    assert_eq!(message.msgid.as_deref(), Some("m1@relay.test"));
    let body = String::from_utf8_lossy(&message.body);
    assert!(!body.contains("Received:"), "trace header kept");
    assert!(
        body.ends_with("--kith-B0undary--\r\n"),
        "dot not removed: {body:?}"
    );
    assert_eq!(codes(&exchange(&mut s, "QUIT\r\n").0), ["221"]);
    assert!(s.is_closed());
}

#[test]
fn plaintext_and_wrong_senders_are_refused_and_the_session_goes_on() {
    let mut s = logged_in();
    let plain = format!(
        "MAIL FROM:<{LOGIN}>\r\nRCPT TO:<rcpt00001@relay.test>\r\nDATA\r\n\
         From: <{LOGIN}>\r\n\r\nhello\r\n.\r\n"
    );
    let (out, stored) = exchange(&mut s, &plain);
    assert_eq!(codes(&out), ["250", "250", "354", "523"]);
    assert!(out.contains("523 5.7.1 Encryption Needed"));
    assert!(stored.is_empty());
    let (out, _) = exchange(&mut s, "MAIL FROM:<other@relay.test>\r\n");
    assert_eq!(codes(&out), ["553"]);
    let wrong_from = format!(
        "MAIL FROM:<{LOGIN}>\r\nRCPT TO:<rcpt00001@relay.test>\r\nDATA\r\n{}",
        envelope("someone@else.test")
    );
    let (out, stored) = exchange(&mut s, &wrong_from);
    assert_eq!(codes(&out), ["250", "250", "354", "550"]);
    assert!(stored.is_empty());
    // The send rate (2 per minute here) is used up by the two accepted MAIL commands.
    let (out, _) = exchange(&mut s, &format!("MAIL FROM:<{LOGIN}>\r\n"));
    assert_eq!(codes(&out), ["450"]);
    assert_eq!(codes(&exchange(&mut s, "NOOP\r\n").0), ["250"]);
}

#[test]
fn an_oversize_body_is_refused_without_keeping_it() {
    let mut s = logged_in();
    let (out, _) = exchange(&mut s, &format!("MAIL FROM:<{LOGIN}> SIZE=5000\r\n"));
    assert_eq!(codes(&out), ["552"]);
    let (out, _) = exchange(
        &mut s,
        &format!("MAIL FROM:<{LOGIN}>\r\nRCPT TO:<rcpt00001@relay.test>\r\nDATA\r\n"),
    );
    assert_eq!(codes(&out), ["250", "250", "354"]);
    let line = format!("{}\r\n", "x".repeat(998));
    for _ in 0..10 {
        let (out, _) = exchange(&mut s, &line);
        assert!(out.is_empty());
        let super::session::Phase::Data(data) = &s.phase else {
            panic!("left DATA early")
        };
        assert!(data_len(data) <= 2_000 + line.len());
    }
    let (out, stored) = exchange(&mut s, ".\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["552", "250"]);
    assert!(stored.is_empty());
}

fn data_len(data: &super::session::DataPhase) -> usize {
    data.body_len()
}

#[test]
fn authentication_rules() {
    // No AUTH before TLS on STARTTLS submission; then STARTTLS, then AUTH works.
    let mut s = session(ListenerKind::Submission);
    let (out, _) = exchange(
        &mut s,
        &format!("EHLO c\r\n{}", auth_plain(LOGIN, "password123")),
    );
    assert!(!out.contains("AUTH"), "{out}");
    assert_eq!(codes(&out), ["220", "250", "538"]);
    let (out, _) = exchange(&mut s, "MAIL FROM:<a@relay.test>\r\n");
    assert_eq!(codes(&out), ["530"]);
    let (out, _) = exchange(&mut s, "STARTTLS\r\nNOOP\r\n");
    assert_eq!(
        codes(&out),
        ["220"],
        "pipelined input after STARTTLS must be dropped"
    );
    let (out, _) = exchange(&mut s, "EHLO c\r\n");
    assert!(
        out.contains("AUTH PLAIN") && !out.contains("STARTTLS"),
        "{out}"
    );
    // Wrong password, then the limit of failed logins (2 here), then 421 and close.
    let (out, _) = exchange(&mut s, &auth_plain(LOGIN, "wrong-password"));
    assert_eq!(codes(&out), ["535"]);
    let (out, _) = exchange(&mut s, "AUTH PLAIN\r\n");
    assert_eq!(codes(&out), ["334"]);
    let line = auth_plain(LOGIN, "wrong-again").replace("AUTH PLAIN ", "");
    assert_eq!(codes(&exchange(&mut s, &line).0), ["535"]);
    let (out, _) = exchange(&mut s, &auth_plain(LOGIN, "password123"));
    assert_eq!(codes(&out), ["421"]);
    assert!(s.is_closed());
}

#[test]
fn inbound_accepts_only_existing_local_recipients_and_no_auth() {
    let mut s = session(ListenerKind::Inbound);
    let (out, _) = exchange(
        &mut s,
        "EHLO relay.other\r\nAUTH PLAIN AGEAYg==\r\nMAIL FROM:<x@other.test>\r\n\
         RCPT TO:<y@third.test>\r\nRCPT TO:<nobody123@relay.test>\r\nDATA\r\n\
         RCPT TO:<rcpt00001@relay.test>\r\n",
    );
    assert!(
        out.contains("250-STARTTLS") && !out.contains("250-AUTH"),
        "{out}"
    );
    assert_eq!(
        codes(&out),
        ["220", "250", "502", "250", "550", "550", "554", "250"]
    );
    let (out, stored) = exchange(&mut s, &format!("DATA\r\n{}", envelope("x@other.test")));
    assert_eq!(codes(&out), ["354", "250"]);
    assert!(
        String::from_utf8_lossy(&stored[0].body).contains("Received:"),
        "inbound mail is stored as received"
    );
}

#[test]
fn too_many_recipients_and_malformed_commands() {
    let mut s = logged_in();
    let mut input = format!("MAIL FROM:<{LOGIN}>\r\n");
    for i in 0..4 {
        input.push_str(&format!("RCPT TO:<r{i}@other.test>\r\n"));
    }
    let (out, _) = exchange(&mut s, &input);
    assert_eq!(codes(&out), ["250", "250", "250", "250", "452"]);
    let long = format!("NOOP {}\r\n", "a".repeat(10_000));
    let (out, _) = exchange(
        &mut s,
        &format!("RSET\r\nFOO\r\nMAIL FROM:bad\r\nRCPT TO:<>\r\n\r\n{long}RSET\r\n"),
    );
    assert_eq!(
        codes(&out),
        ["250", "500", "501", "503", "500", "500", "250"],
        "{out}"
    );
    // Enough errors close the session.
    let (out, _) = exchange(&mut s, &"BAD\r\n".repeat(30));
    assert!(out.ends_with("421 4.7.0 Too many errors, closing connection\r\n"));
    assert!(s.is_closed());
}
