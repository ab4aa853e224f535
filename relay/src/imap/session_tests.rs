//! The session state machine driven without sockets, against an in-memory mailbox.
use super::fuzzing::{run, MemoryMailbox};
use super::session::{Session, SessionConfig};
use crate::store::Flags;

struct Client {
    session: Session,
    mailbox: MemoryMailbox,
}

impl Client {
    fn new(config: SessionConfig, bodies: &[&[u8]]) -> (Self, String) {
        let mut client = Self {
            session: Session::new(config),
            mailbox: MemoryMailbox::with(bodies),
        };
        let (greeting, _) = run(&mut client.session, &mut client.mailbox);
        (client, String::from_utf8(greeting).unwrap())
    }

    fn tls(bodies: &[&[u8]]) -> Self {
        Self::new(
            SessionConfig {
                is_tls: true,
                offers_starttls: false,
                allows_plaintext_auth: false,
            },
            bodies,
        )
        .0
    }

    fn send(&mut self, input: &str) -> String {
        self.session.receive(input.as_bytes());
        let (out, _) = run(&mut self.session, &mut self.mailbox);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn logged_in_and_selected(bodies: &[&[u8]]) -> Self {
        let mut client = Self::tls(bodies);
        assert!(client
            .send("a LOGIN me@x \"secret password\"\r\n")
            .contains("a OK"));
        assert!(client
            .send("b SELECT INBOX\r\n")
            .contains("b OK [READ-WRITE]"));
        client
    }
}

#[test]
fn plaintext_sessions_offer_starttls_and_refuse_login() {
    let (mut client, greeting) = Client::new(
        SessionConfig {
            is_tls: false,
            offers_starttls: true,
            allows_plaintext_auth: false,
        },
        &[],
    );
    assert!(greeting.starts_with("* OK [CAPABILITY IMAP4REV1 STARTTLS LOGINDISABLED"));
    let out = client.send("a LOGIN me@x \"secret password\"\r\n");
    assert!(out.starts_with("a NO [PRIVACYREQUIRED]"), "{out}");
    let out = client.send("b STARTTLS\r\nc LOGIN injected\r\n");
    assert!(out.starts_with("b OK"), "{out}");
    client.session.tls_started();
    // The pipelined plaintext after STARTTLS was dropped, not run.
    let out = client.send("d CAPABILITY\r\n");
    assert!(!out.contains("c "), "{out}");
    assert!(
        out.contains("AUTH=PLAIN") && !out.contains("STARTTLS"),
        "{out}"
    );
}

#[test]
fn select_reports_uids_and_fetching_a_body_sets_seen() {
    let mut client = Client::tls(&[b"Subject: hi\r\n\r\nbody one", b"two"]);
    client.send("a LOGIN me@x \"secret password\"\r\n");
    let out = client.send("b SELECT INBOX\r\n");
    for line in [
        "* 2 EXISTS",
        "[UIDVALIDITY 42]",
        "[UIDNEXT 3]",
        "[UNSEEN 1]",
    ] {
        assert!(out.contains(line), "{line} missing in {out}");
    }
    let out =
        client.send("c UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
    assert!(out.contains("* 1 FETCH (UID 1 RFC822.SIZE 23 BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n)"), "{out}");
    assert!(out.contains("c OK"), "{out}");
    assert!(
        !client.mailbox.messages[0].0.flags.contains(Flags::SEEN),
        "PEEK must not set \\Seen"
    );
    let out = client.send("d FETCH 2 (BODY[] FLAGS)\r\n");
    assert!(
        out.contains("* 2 FETCH (BODY[] {3}\r\ntwo FLAGS (\\Seen))"),
        "{out}"
    );
    assert!(client.mailbox.messages[1].0.flags.contains(Flags::SEEN));
    let out = client.send("e UID SEARCH UNSEEN\r\n");
    assert!(out.contains("* SEARCH 1\r\n"), "{out}");
}

#[test]
fn store_and_expunge_renumber_the_mailbox() {
    let mut client = Client::logged_in_and_selected(&[b"one", b"two", b"three"]);
    let out = client.send("a STORE 1:2 +FLAGS (\\Deleted)\r\n");
    assert!(out.contains("* 1 FETCH (FLAGS (\\Deleted))"), "{out}");
    let out = client.send("b UID EXPUNGE 2\r\n");
    assert_eq!(out, "* 2 EXPUNGE\r\nb OK EXPUNGE completed\r\n");
    let out = client.send("c EXPUNGE\r\n");
    assert_eq!(out, "* 1 EXPUNGE\r\nc OK EXPUNGE completed\r\n");
    let out = client.send("d FETCH 1 (UID)\r\n");
    assert!(out.contains("* 1 FETCH (UID 3)"), "{out}");
}

#[test]
fn idle_announces_new_messages_and_ends_on_done() {
    let mut client = Client::logged_in_and_selected(&[b"one"]);
    assert_eq!(client.send("a IDLE\r\n"), "+ idling\r\n");
    assert!(client.session.is_idling());
    client.mailbox.deliver(b"two");
    client.session.mailbox_changed();
    let (out, _) = run(&mut client.session, &mut client.mailbox);
    assert_eq!(String::from_utf8(out).unwrap(), "* 2 EXISTS\r\n");
    assert_eq!(client.send("DONE\r\n"), "a OK IDLE terminated\r\n");
}

#[test]
fn malformed_commands_get_bad_and_the_session_goes_on() {
    let mut client = Client::tls(&[]);
    let out = client.send("a FROBNICATE\r\n\r\n* x\r\nb NOOP\r\n");
    assert_eq!(out.matches(" BAD ").count(), 3, "{out}");
    assert!(out.ends_with("b OK NOOP completed\r\n"), "{out}");
    assert_eq!(client.session.take_rejected_commands(), 3);
    let out = client.send("c LOGIN {2000000}\r\n");
    assert!(out.starts_with("c BAD [TOOBIG]"), "{out}");
    let out = client.send(&format!("d NOOP {}\r\n", "x".repeat(70_000)));
    assert!(out.contains("d BAD Command too long"), "{out}");
}

#[test]
fn login_with_literals_and_authenticate_plain_both_work() {
    let mut client = Client::tls(&[]);
    assert_eq!(
        client.send("a LOGIN {4}\r\n"),
        "+ Ready for literal data\r\n"
    );
    let out = client.send("me@x {15}\r\n");
    assert_eq!(out, "+ Ready for literal data\r\n");
    let out = client.send("secret password\r\n");
    assert!(
        out.starts_with("a OK [CAPABILITY IMAP4REV1 IDLE UIDPLUS]"),
        "{out}"
    );

    let mut client = Client::tls(&[]);
    assert_eq!(client.send("a AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    // base64("\0me@x\0secret password")
    let out = client.send("AG1lQHgAc2VjcmV0IHBhc3N3b3Jk\r\n");
    assert!(out.starts_with("a OK"), "{out}");

    let mut client = Client::tls(&[]);
    let out = client.send("a AUTHENTICATE PLAIN AG1lQHgAd3Jvbmc=\r\n");
    assert!(out.starts_with("a NO [AUTHENTICATIONFAILED]"), "{out}");
}

#[test]
fn fuzz_entry_point_survives_a_mixed_session() {
    let script = b"\x05a LOGIN me@x \"secret password\"\r\nb SELECT INBOX\r\nc IDLE\r\nDONE\r\nd UID FETCH 1:* (BODY[] FLAGS)\r\ne LOGOUT\r\n";
    super::fuzz_session(script);
    super::fuzz_session(b"");
    super::fuzz_session(b"\x00{99999999}\r\n");
}

#[test]
fn the_checked_in_fuzz_corpus_runs_clean() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/imap_session");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        super::fuzz_session(&std::fs::read(entry.unwrap().path()).unwrap());
        seen += 1;
    }
    assert!(seen >= 4, "the corpus is missing");
}
