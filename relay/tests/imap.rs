//! The IMAP server driven by real clients over real sockets: async-imap, Python's imaplib
//! and curl, against an in-process listener with a temporary data directory.
#[path = "imap/harness.rs"]
mod harness;

use std::collections::HashSet;
use std::process::Command;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::Flag;
use futures::TryStreamExt;
use harness::{address, Raw, Relay, PASSWORD};

#[tokio::test]
async fn login_creates_the_account_and_a_mailbox_can_be_read_flagged_and_expunged() {
    let relay = Relay::start(|_| {}).await;
    let me = address(1);
    let mut session = relay.session(&me).await;
    assert!(relay.ctx.store.account_exists(&me).await.unwrap());

    relay.deliver(&[&me], b"Subject: one\r\n\r\nfirst").await;
    relay.deliver(&[&me], b"second").await;
    session.noop().await.unwrap();
    let fetched: Vec<_> = session
        .uid_fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let bodies: Vec<(u32, Vec<u8>, u32)> = fetched
        .iter()
        .map(|f| (f.uid.unwrap(), f.body().unwrap().to_vec(), f.size.unwrap()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            (1, b"Subject: one\r\n\r\nfirst".to_vec(), 21),
            (2, b"second".to_vec(), 6)
        ]
    );
    assert!(
        fetched.iter().all(|f| f.flags().next().is_none()),
        "PEEK leaves \\Seen unset"
    );

    let fetched: Vec<_> = session
        .fetch("2", "RFC822")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetched[0].body(), Some(&b"second"[..]));
    let unseen = session.uid_search("UNSEEN").await.unwrap();
    assert_eq!(
        unseen,
        HashSet::from([1]),
        "fetching RFC822 set \\Seen on 2"
    );

    let stored: Vec<_> = session
        .uid_store("1", "+FLAGS (\\Deleted)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(stored[0].flags().any(|f| f == Flag::Deleted));
    let expunged: Vec<u32> = session
        .expunge()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(expunged, vec![1]);
    let mailbox = session.select("INBOX").await.unwrap();
    assert_eq!(mailbox.exists, 1);
    assert_eq!(mailbox.uid_next, Some(3));
    session.logout().await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn idle_is_woken_when_a_message_is_accepted() {
    let relay = Relay::start(|_| {}).await;
    let me = address(2);
    let session = relay.session(&me).await;
    let mut idle = session.idle();
    idle.init().await.unwrap();
    let (wait, _stop) = idle.wait();
    let deliver = async {
        relay.deliver(&[&me], b"wake up").await;
    };
    let (response, ()) = tokio::join!(wait, deliver);
    match response.unwrap() {
        IdleResponse::NewData(data) => assert!(
            matches!(
                data.parsed(),
                async_imap::imap_proto::Response::MailboxData(
                    async_imap::imap_proto::MailboxDatum::Exists(1)
                )
            ),
            "{data:?}"
        ),
        other => panic!("IDLE ended without news: {other:?}"),
    }
    let mut session = idle.done().await.unwrap();
    let fetched: Vec<_> = session
        .uid_fetch("1", "BODY[]")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetched[0].body(), Some(&b"wake up"[..]));
    relay.stop().await;
}

#[tokio::test]
async fn uidvalidity_stays_and_uidnext_only_grows() {
    let relay = Relay::start(|_| {}).await;
    let me = address(3);
    let mut session = relay.session(&me).await;
    let first = session.select("INBOX").await.unwrap();
    assert_eq!(first.uid_next, Some(1));
    assert!(first.uid_validity.unwrap() > 0);
    relay.deliver(&[&me], b"a").await;
    relay.deliver(&[&me], b"b").await;
    session
        .uid_store("1:*", "+FLAGS.SILENT (\\Deleted)")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    session
        .uid_expunge("1:*")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    session.logout().await.unwrap();

    let mut session = relay.session(&me).await;
    let again = session.examine("INBOX").await.unwrap();
    assert_eq!(again.exists, 0);
    assert_eq!(again.uid_validity, first.uid_validity);
    assert_eq!(again.uid_next, Some(3), "UIDs are never reused");
    relay.stop().await;
}

#[tokio::test]
async fn bad_passwords_are_refused_and_repeated_failures_end_in_bye() {
    let relay = Relay::start(|c| c.limits.failed_logins_per_ip_per_minute = 2).await;
    let me = address(4);
    relay.session(&me).await.logout().await.unwrap();
    for _ in 0..2 {
        let refused = relay.client().await.login(&me, "wrong password!").await;
        assert!(refused.is_err(), "a wrong password logged in");
    }
    let mut raw = Raw::new(relay.tls().await);
    raw.line().await;
    raw.send(&format!("a LOGIN {me} \"{PASSWORD}\"\r\n")).await;
    let lines = vec![raw.line().await, raw.line().await, raw.line().await];
    assert!(lines[0].starts_with("a NO"), "{lines:?}");
    assert!(lines[1].starts_with("* BYE"), "{lines:?}");
    assert_eq!(lines[2], "", "the connection is closed");
    relay.stop().await;
}

#[tokio::test]
async fn malformed_commands_get_bad_and_the_connection_keeps_working() {
    let relay = Relay::start(|_| {}).await;
    let mut raw = Raw::new(relay.tls().await);
    raw.line().await;
    raw.send("a FROBNICATE now\r\n").await;
    assert!(raw.line().await.starts_with("a BAD"));
    raw.send("garbage without a tag\r\n").await;
    assert!(raw.line().await.contains("BAD"));
    raw.send("b SELECT INBOX\r\n").await;
    assert!(
        raw.line().await.starts_with("b NO"),
        "SELECT before login is refused"
    );
    raw.send(&format!("c LOGIN {} \"{PASSWORD}\"\r\n", address(5)))
        .await;
    assert!(raw
        .until_tagged("c")
        .await
        .last()
        .unwrap()
        .starts_with("c OK"));
    raw.send("d FETCH 1:* (BODY[]\r\n").await;
    assert!(raw.line().await.starts_with("d BAD"));
    raw.send("e CAPABILITY\r\n").await;
    let lines = raw.until_tagged("e").await;
    assert!(
        lines[0].contains("IDLE") && lines[1].starts_with("e OK"),
        "{lines:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn too_many_connections_from_one_address_get_bye() {
    let relay = Relay::start(|c| c.limits.connections_per_ip = 2).await;
    let _a = relay.client().await;
    let _b = relay.client().await;
    let mut raw = Raw::new(relay.tls().await);
    assert!(raw.line().await.starts_with("* BYE"));
    assert_eq!(raw.line().await, "", "and closed");
    drop(_a);
    // Once a slot is free a new client gets in (the slot is freed when the task ends).
    let mut admitted = false;
    for _ in 0..100 {
        let mut raw = Raw::new(relay.tls().await);
        if raw.line().await.starts_with("* OK") {
            admitted = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(admitted);
    relay.stop().await;
}

#[tokio::test]
async fn starttls_upgrades_the_plain_listener_and_login_waits_for_it() {
    let relay = Relay::start_with(false, |_| {}).await;
    let tcp = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let mut raw = Raw::new(tcp);
    let greeting = raw.line().await;
    assert!(
        greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"),
        "{greeting}"
    );
    raw.send(&format!("a LOGIN {} \"{PASSWORD}\"\r\n", address(6)))
        .await;
    assert!(raw.line().await.starts_with("a NO"));
    raw.send("b STARTTLS\r\n").await;
    assert!(raw.line().await.starts_with("b OK"));
    let mut raw = Raw::new(harness::tls_over(raw.into_inner()).await);
    raw.send(&format!("c LOGIN {} \"{PASSWORD}\"\r\n", address(6)))
        .await;
    assert!(raw
        .until_tagged("c")
        .await
        .last()
        .unwrap()
        .starts_with("c OK"));
    relay.stop().await;
}

#[tokio::test]
async fn plaintext_login_on_loopback_only_when_the_operator_allows_it() {
    let relay = Relay::start_with(false, |c| c.listen.allow_plaintext_on_loopback = true).await;
    let mut session =
        async_imap::Client::new(tokio::net::TcpStream::connect(relay.addr).await.unwrap());
    session.read_response().await.unwrap();
    let mut session = session
        .login(address(7), PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(session.select("INBOX").await.unwrap().exists, 0);
    relay.stop().await;
}

#[tokio::test]
async fn python_imaplib_reads_and_deletes_messages() {
    let relay = Relay::start(|_| {}).await;
    let me = address(8);
    relay.session(&me).await.logout().await.unwrap();
    relay
        .deliver(&[&me], b"Subject: py\r\n\r\nhello python")
        .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/imap/imaplib_client.py");
    let port = relay.addr.port().to_string();
    let args: Vec<String> = [script, "127.0.0.1", &port, &me, PASSWORD]
        .map(String::from)
        .into();
    let output = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .unwrap()
        .expect("python3 must be installed to run this test (it drives the relay with imaplib)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "imaplib client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("fetched: Subject: py\r\n\r\nhello python"),
        "{stdout}"
    );
    assert!(stdout.contains("expunged: 1"), "{stdout}");
    assert_eq!(relay.ctx.store.mailbox_status(&me).await.unwrap().exists, 0);
    relay.stop().await;
}

#[tokio::test]
async fn curl_lists_the_mailbox_and_fetches_by_uid() {
    let curl = Command::new("which").arg("curl").output().unwrap();
    assert!(
        curl.status.success(),
        "curl must be installed to run this test"
    );
    let relay = Relay::start(|_| {}).await;
    let me = address(9);
    relay.session(&me).await.logout().await.unwrap();
    relay
        .deliver(&[&me], b"Subject: curl\r\n\r\nhello curl\r\n")
        .await;
    let base = format!("imaps://127.0.0.1:{}/INBOX", relay.addr.port());
    let user = format!("{me}:{PASSWORD}");
    let run = |url: String| {
        let user = user.clone();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("curl")
                .args([
                    "--insecure",
                    "--silent",
                    "--show-error",
                    "--max-time",
                    "20",
                    "-u",
                    &user,
                    &url,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "curl {url}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let listing = run(base.clone()).await.unwrap();
    assert!(listing.contains("INBOX"), "{listing}");
    let message = run(format!("{base};UID=1")).await.unwrap();
    assert_eq!(message, "Subject: curl\r\n\r\nhello curl\r\n");
    relay.stop().await;
}
