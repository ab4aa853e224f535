//! The real `kith-relay` binary on loopback, driven by lettre, async-imap and raw sockets:
//! submission over implicit TLS and STARTTLS, IDLE wake-up, federation with a static route
//! and queue retry, rejections, graceful shutdown, and a SIGKILL crash test.
#[path = "smtp/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_over_implicit_tls_and_starttls_lands_in_the_mailbox() {
    let mut relay = Relay::start("a.test", |_| {});
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let implicit = relay.client(&alice, PASSWORD, true);
    send(
        &implicit,
        &alice,
        &[&bob],
        &envelope_message(&alice, "m1@a.test"),
    )
    .await
    .unwrap();
    let starttls = relay.client(&bob, PASSWORD, false);
    send(
        &starttls,
        &bob,
        &[&alice, &bob],
        &envelope_message(&bob, "m2@a.test"),
    )
    .await
    .unwrap();
    // The same Message-ID again is acknowledged but not stored twice.
    send(
        &starttls,
        &bob,
        &[&alice],
        &envelope_message(&bob, "m2@a.test"),
    )
    .await
    .unwrap();
    assert_eq!(relay.copies(&bob, "m1@a.test"), 1);
    assert_eq!(relay.copies(&alice, "m2@a.test"), 1);
    assert_eq!(relay.copies(&bob, "m2@a.test"), 1);
    assert_eq!(relay.copies(&alice, "m1@a.test"), 0);
    let body: Vec<u8> = relay
        .db()
        .query_row(
            "SELECT m.body FROM mailbox b JOIN messages m ON m.id = b.message_id
             WHERE b.address = ?1 AND b.msgid = 'm1@a.test'",
            [&bob],
            |r| r.get(0),
        )
        .unwrap();
    let body = String::from_utf8(body).unwrap();
    assert!(!body.contains("X-Mailer"), "trace header stored");
    assert!(body.contains("-----END PGP MESSAGE-----"));
    let text = metrics(&relay).await;
    assert!(text.contains("kith_relay_messages_in_total 5"), "{text}");
    assert!(text.contains("kith_relay_queue_depth 0"), "{text}");
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_message_wakes_idle_and_is_fetched_over_imap() {
    use futures::TryStreamExt as _;
    let mut relay = Relay::start("i.test", |c| c.listen.imaps = Some(free_addr()));
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let mut imap = imap_login(&relay, &bob).await;
    let mailbox = imap.select("INBOX").await.unwrap();
    assert_eq!(mailbox.exists, 1, "bob's own hello message");
    let mut idle = imap.idle();
    idle.init().await.unwrap();
    let (wait, _stop) = idle.wait();
    let client = relay.client(&alice, PASSWORD, false);
    let message = envelope_message(&alice, "idle1@i.test");
    let recipients = [bob.as_str()];
    let submit = send(&client, &alice, &recipients, &message);
    let (woken, sent) = tokio::join!(wait, submit);
    sent.unwrap();
    assert!(matches!(
        woken.unwrap(),
        async_imap::extensions::idle::IdleResponse::NewData(_)
    ));
    let mut imap = idle.done().await.unwrap();
    let fetched: Vec<_> = imap
        .uid_fetch("1:*", "BODY[]")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let bodies: Vec<String> = fetched
        .iter()
        .filter_map(|f| f.body())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies
        .iter()
        .any(|b| b.contains("Message-ID: <idle1@i.test>")));
    imap.logout().await.unwrap();
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_over_a_static_route_survives_the_remote_being_down() {
    // Relay B first, to create the recipient's account; then it goes down.
    let mut b = Relay::prepare("b.test", |_| {});
    b.spawn();
    let carol = account(&b, "carol0001").await;
    b.stop();
    let route = b.config.listen.smtp.unwrap().to_string();
    let mut a = Relay::start("a.test", |c| {
        c.federation.routes.insert("b.test".into(), route);
    });
    let alice = account(&a, "alice0001").await;
    let local_too = account(&a, "dave00001").await;
    let client = a.client(&alice, PASSWORD, true);
    send(
        &client,
        &alice,
        &[&carol, &local_too],
        &envelope_message(&alice, "fed1@a.test"),
    )
    .await
    .unwrap();
    assert_eq!(a.copies(&local_too, "fed1@a.test"), 1);
    // B is down: the queue entry is retried.
    wait_until("a failed delivery attempt", || {
        a.queue_attempts().first().is_some_and(|n| *n >= 2)
    })
    .await;
    b.spawn();
    wait_until("the message reaches B", || {
        b.copies(&carol, "fed1@a.test") == 1
    })
    .await;
    wait_until("A's queue empties", || a.queue_attempts().is_empty()).await;
    let text = metrics(&a).await;
    assert!(text.contains("kith_relay_messages_out_total 1"), "{text}");
    // A permanent refusal by B (no such mailbox) drops the entry instead of retrying it.
    let nobody = b.address("nobody123");
    send(
        &client,
        &alice,
        &[&nobody],
        &envelope_message(&alice, "fed2@a.test"),
    )
    .await
    .unwrap();
    // (A transient failure would keep the entry for a retry; a refusal removes it.)
    wait_until("the refused entry is dropped", || {
        a.queue_attempts().is_empty()
    })
    .await;
    assert!(metrics(&a)
        .await
        .contains("kith_relay_messages_out_total 1"));
    // B accepts nothing for other domains, and nothing unencrypted, from relays.
    let mut smtp = RawSmtp::connect(b.config.listen.smtp.unwrap()).await;
    smtp.expect("EHLO a.test", "250").await;
    smtp.expect("MAIL FROM:<x@a.test>", "250").await;
    smtp.expect("RCPT TO:<y@c.test>", "550").await;
    smtp.expect(&format!("RCPT TO:<{carol}>"), "250").await;
    smtp.expect("DATA", "354").await;
    smtp.expect("From: <x@a.test>\r\n\r\nplain text\r\n.", "523")
        .await;
    a.stop();
    b.stop();
    assert_eq!(b.copies(&carol, "fed1@a.test"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_leave_the_relay_working() {
    let mut relay = Relay::start("r.test", |c| {
        c.limits.max_message_bytes = 64 * 1024;
        c.limits.send_per_minute = 6;
        c.limits.connections_per_ip = 4;
    });
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let client = relay.client(&alice, PASSWORD, true);
    let ok = |n: u32| envelope_message(&alice, &format!("ok{n}@r.test"));

    let plaintext = format!("From: <{alice}>\r\nMessage-ID: <p@r.test>\r\n\r\nhello\r\n");
    let refused = send(&client, &alice, &[&bob], plaintext.as_bytes()).await;
    assert_eq!(code(refused.unwrap_err()), "523");
    send(&client, &alice, &[&bob], &ok(1)).await.unwrap();

    let wrong_sender = send(&client, &bob, &[&bob], &ok(2)).await;
    assert_eq!(code(wrong_sender.unwrap_err()), "553");
    let wrong_from = envelope_message(&bob, "wf@r.test");
    assert_eq!(
        code(
            send(&client, &alice, &[&bob], &wrong_from)
                .await
                .unwrap_err()
        ),
        "550"
    );

    let mut huge = envelope_message(&alice, "big@r.test");
    huge.extend(std::iter::repeat_n(b'A', 100 * 1024));
    assert_eq!(
        code(send(&client, &alice, &[&bob], &huge).await.unwrap_err()),
        "552"
    );
    let unknown = relay.address("nobody123");
    assert_eq!(
        code(
            send(&client, &alice, &[&unknown], &ok(3))
                .await
                .unwrap_err()
        ),
        "550"
    );

    let bad_password = relay.client(&alice, "wrong-password-1", false);
    assert_eq!(
        code(
            send(&bad_password, &alice, &[&bob], &ok(4))
                .await
                .unwrap_err()
        ),
        "535"
    );

    // Six MAIL commands a minute: the rest of this minute's budget, then 450.
    let mut sent = 0;
    let refusal = loop {
        match send(&client, &alice, &[&bob], &ok(10 + sent)).await {
            Ok(()) => sent += 1,
            Err(error) => break code(error),
        }
        assert!(sent < 10, "no rate limit");
    };
    assert_eq!(refusal, "450");
    // Bob is not limited by Alice's rate.
    let bob_client = relay.client(&bob, PASSWORD, false);
    send(
        &bob_client,
        &bob,
        &[&alice],
        &envelope_message(&bob, "b1@r.test"),
    )
    .await
    .unwrap();
    assert_eq!(relay.copies(&bob, "ok1@r.test"), 1);
    assert_eq!(relay.copies(&bob, "big@r.test"), 0);
    assert_eq!(relay.copies(&bob, "p@r.test"), 0);

    // Malformed commands on one connection; it keeps working.
    let mut smtp = RawSmtp::connect(relay.config.listen.smtp.unwrap()).await;
    smtp.expect("HELLO there", "500").await;
    smtp.expect("MAIL FROM:<x@other.test>", "503").await;
    smtp.expect("EHLO other.test", "250").await;
    smtp.expect("MAIL FROM:no-brackets", "501").await;
    smtp.expect("RCPT TO:<bob000001@r.test>", "503").await;
    smtp.expect("DATA", "503").await;
    smtp.expect(&format!("NOOP {}", "x".repeat(9000)), "500")
        .await;
    smtp.expect("MAIL FROM:<x@other.test>", "250").await;
    smtp.expect(&format!("RCPT TO:<{bob}>"), "250").await;
    smtp.expect("QUIT", "221").await;

    // Connections per IP (4 here): the next one is told 421 and closed; once some close,
    // new ones are welcome again.
    let smtp_addr = relay.config.listen.smtp.unwrap();
    let mut open = Vec::new();
    let refusal = loop {
        let (conn, greeting) = RawSmtp::open(smtp_addr).await;
        if greeting != "220" {
            break greeting;
        }
        open.push(conn);
        assert!(open.len() <= 4, "more than 4 connections accepted");
    };
    assert_eq!(refusal, "421");
    drop(open);
    let started = Instant::now();
    loop {
        let (mut conn, greeting) = RawSmtp::open(smtp_addr).await;
        if greeting == "220" {
            conn.expect("NOOP", "250").await;
            break;
        }
        assert!(started.elapsed() < PATIENCE, "connection slots never freed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = metrics(&relay).await;
    for reason in [
        "not_encrypted",
        "sender_mismatch",
        "too_large",
        "rate_limited",
        "bad_login",
    ] {
        assert!(
            !text.contains(&format!("reason=\"{reason}\"}} 0")),
            "{reason} not counted:\n{text}"
        );
    }
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relay_keeps_every_acknowledged_message_exactly_once() {
    const MESSAGES: usize = 2000;
    const SENDERS: usize = 24;
    let mut relay = Relay::start("k.test", |c| {
        c.limits.send_per_minute = 1_000_000;
        c.limits.connections_per_ip = 1000;
    });
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let client = relay.client(&alice, PASSWORD, true);
        let (alice, bob, acked, next) = (alice.clone(), bob.clone(), acked.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= MESSAGES {
                    return;
                }
                let msgid = format!("crash{n}@k.test");
                let message = envelope_message(&alice, &msgid);
                match send(&client, &alice, &[&bob], &message).await {
                    Ok(()) => acked.lock().unwrap().push(msgid),
                    Err(_) => return,
                }
            }
        }));
    }
    wait_until("some messages are acknowledged", || {
        acked.lock().unwrap().len() >= MESSAGES / 4
    })
    .await;
    let (before_kill, elapsed) = (acked.lock().unwrap().len(), started.elapsed());
    relay.kill();
    eprintln!(
        "crash test: {before_kill} messages acknowledged in {elapsed:?} by {SENDERS} TLS \
         clients (one connection per message) before SIGKILL"
    );
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < MESSAGES,
        "the kill came too late to test anything"
    );

    relay.spawn();
    let counts: HashMap<String, i64> = {
        let conn = relay.db();
        let mut stmt = conn
            .prepare("SELECT msgid, count(*) FROM mailbox WHERE address = ?1 GROUP BY msgid")
            .unwrap();
        let rows = stmt
            .query_map([&bob], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for msgid in &acked {
        assert_eq!(
            counts.get(msgid),
            Some(&1),
            "{msgid} acknowledged but not stored once"
        );
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "a message was stored twice"
    );

    // Clients retry whatever was not acknowledged (and some that was): each is stored once.
    let client = relay.client(&alice, PASSWORD, true);
    for n in (0..MESSAGES).step_by(7) {
        let msgid = format!("crash{n}@k.test");
        send(&client, &alice, &[&bob], &envelope_message(&alice, &msgid))
            .await
            .unwrap();
        assert_eq!(relay.copies(&bob, &msgid), 1);
    }
    relay.stop();
    eprintln!(
        "crash test: {} of {MESSAGES} acknowledged before SIGKILL, all stored exactly once",
        acked.len()
    );
}
