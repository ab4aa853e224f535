//! The transport against a real kith-relay in process (SMTP submission and IMAP with TLS on
//! loopback): envelopes from A's outbox reach B's inbox through IDLE, are deleted from the
//! relay only after B committed them, a stop between commit and delete processes nothing
//! twice, and the outbox survives a restart while the relay is down.
#[path = "transport/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::{account_dir, envelope, pgp_block, wait_for_event, Relay, PATIENCE};
use kith_core::account::Account;
use kith_core::events::{ConnectionState, Event};
use kith_core::transport::{InboxOptions, Incoming, OutboxOptions, Security};
use rusqlite::Transaction;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type TaskResult = Result<(), kith_core::transport::TransportError>;

fn fast_inbox() -> InboxOptions {
    InboxOptions::default()
        .with_backoff(Duration::from_millis(50), Duration::from_millis(500))
        .with_io_timeout(Duration::from_secs(30))
}

fn fast_outbox() -> OutboxOptions {
    OutboxOptions::default().with_retry(Duration::from_millis(50), Duration::from_millis(500))
}

/// The handler a real client would have: it stores the envelope as a message row (in the
/// loop's transaction) and reports the key to the test.
fn storing_handler(
    seen: mpsc::UnboundedSender<(String, Vec<u8>)>,
) -> impl FnMut(&Transaction<'_>, &Incoming<'_>) -> Result<(), rusqlite::Error> {
    move |tx, incoming| {
        tx.execute(
            "INSERT OR IGNORE INTO chats (id, kind, created_at) VALUES (1, 'direct', 0)",
            [],
        )?;
        tx.execute(
            "INSERT INTO messages (id, chat_id, sender_identity, sender_device, content,
                                   sent_at, received_at, state)
             VALUES (?1, 1, x'', x'', ?2, 0, 0, 'received')",
            rusqlite::params![incoming.key.0, incoming.bytes],
        )?;
        let _ = seen.send((incoming.key.0.clone(), incoming.bytes.to_vec()));
        Ok(())
    }
}

fn message_rows(account: &Account) -> Vec<String> {
    account
        .database()
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY rowid")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .unwrap()
}

fn outbox_attempts(account: &Account) -> Vec<i64> {
    account
        .database()
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT attempts FROM outbox ORDER BY id")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<Result<Vec<i64>, _>>()?)
        })
        .unwrap()
}

/// Starts B's inbox loop and waits until it is logged in (so its relay account exists).
async fn start_inbox<H, E>(
    account: &Account,
    handler: H,
    stop: CancellationToken,
) -> JoinHandle<TaskResult>
where
    H: FnMut(&Transaction<'_>, &Incoming<'_>) -> Result<(), E> + Send + 'static,
    E: std::fmt::Display + 'static,
{
    let mut events = account.events().subscribe();
    let inbox = account.inbox(fast_inbox());
    let task = tokio::spawn(async move { inbox.run(handler, stop).await });
    wait_for_event(&mut events, |e| {
        *e == Event::ConnectionChanged(ConnectionState::Connected)
    })
    .await;
    task
}

async fn recv(seen: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>) -> (String, Vec<u8>) {
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .expect("the handler never saw the envelope")
        .expect("handler dropped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_goes_from_a_to_b_through_idle_and_leaves_the_relay_after_commit() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    // A uses implicit TLS, B STARTTLS: both paths of both protocols.
    let a = Account::create(
        &account_dir(&dirs, "a"),
        relay.endpoint(Security::ImplicitTls),
    )
    .unwrap();
    let b = Account::create(&account_dir(&dirs, "b"), relay.endpoint(Security::StartTls)).unwrap();
    let stop = CancellationToken::new();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let inbox = start_inbox(&b, storing_handler(seen_tx), stop.clone()).await;

    let mut a_events = a.events().subscribe();
    let outbox = a.outbox(fast_outbox());
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move { outbox.run(stop).await }
    });
    let (sent, msgid) = envelope(a.address());
    let queued = a.queue_envelope(&sent, &[b.address().to_owned()]).unwrap();

    let (key, received) = recv(&mut seen).await;
    assert_eq!(key, format!("mid:{msgid}"));
    assert_eq!(pgp_block(&received), pgp_block(&sent));
    wait_for_event(&mut a_events, |e| {
        *e == Event::EnvelopeSent { outbox: queued }
    })
    .await;
    assert!(outbox_attempts(&a).is_empty(), "the row goes after the 250");

    relay.wait_for_mailbox_len(b.address(), 0).await;
    assert_eq!(message_rows(&b), vec![key]);

    // And back from B, whose outbox submits with STARTTLS on port 587's equivalent.
    let mut b_events = b.events().subscribe();
    let b_outbox = b.outbox(fast_outbox());
    let b_sender = tokio::spawn({
        let stop = stop.clone();
        async move { b_outbox.run(stop).await }
    });
    let (reply, _) = envelope(b.address());
    let queued = b.queue_envelope(&reply, &[a.address().to_owned()]).unwrap();
    wait_for_event(&mut b_events, |e| {
        *e == Event::EnvelopeSent { outbox: queued }
    })
    .await;
    relay.wait_for_mailbox_len(a.address(), 1).await;

    stop.cancel();
    inbox.await.unwrap().unwrap();
    sender.await.unwrap().unwrap();
    b_sender.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_between_commit_and_delete_processes_nothing_twice() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let b_dir = account_dir(&dirs, "b");
    let b = Account::create(&b_dir, relay.endpoint(Security::ImplicitTls)).unwrap();

    // First run: the handler commits the first envelope and asks the loop to stop, which it
    // does before deleting the message — the state a crash at that point leaves.
    let stop = CancellationToken::new();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut store = storing_handler(seen_tx);
    let handler = {
        let stop = stop.clone();
        move |tx: &Transaction<'_>, incoming: &Incoming<'_>| {
            let result = store(tx, incoming);
            stop.cancel();
            result
        }
    };
    let inbox = start_inbox(&b, handler, stop).await;
    let (first, first_id) = envelope("someone@relay.test");
    relay.deliver(b.address(), &first).await;
    let (key, _) = recv(&mut seen).await;
    assert_eq!(key, format!("mid:{first_id}"));
    inbox.await.unwrap().unwrap();
    assert_eq!(relay.mailbox_len(b.address()).await, 1, "not deleted yet");
    assert_eq!(message_rows(&b), vec![key.clone()]);

    // Restart from the database alone: the committed message is deleted unprocessed.
    drop(b);
    let b = Account::open(&b_dir).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut store = storing_handler(seen_tx);
    let handler = {
        let calls = Arc::clone(&calls);
        move |tx: &Transaction<'_>, incoming: &Incoming<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            store(tx, incoming)
        }
    };
    let stop = CancellationToken::new();
    let inbox = start_inbox(&b, handler, stop.clone()).await;
    relay.wait_for_mailbox_len(b.address(), 0).await;

    // The same envelope stored again under a new UID (a relay or federation duplicate) is
    // recognised by its Message-ID and dropped without calling the handler.
    relay.deliver(b.address(), &first).await;
    relay.wait_for_mailbox_len(b.address(), 0).await;
    // A new envelope is processed as usual, and is the only thing the handler ever saw.
    let (second, second_id) = envelope("someone@relay.test");
    relay.deliver(b.address(), &second).await;
    let (key2, _) = recv(&mut seen).await;
    assert_eq!(key2, format!("mid:{second_id}"));
    relay.wait_for_mailbox_len(b.address(), 0).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(message_rows(&b), vec![key, key2]);

    stop.cancel();
    inbox.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_a_restart_while_the_relay_is_down() {
    let mut relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let a_dir = account_dir(&dirs, "a");
    let a = Account::create(&a_dir, relay.endpoint(Security::ImplicitTls)).unwrap();
    let b = Account::create(
        &account_dir(&dirs, "b"),
        relay.endpoint(Security::ImplicitTls),
    )
    .unwrap();
    let b_stop = CancellationToken::new();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let inbox = start_inbox(&b, storing_handler(seen_tx), b_stop.clone()).await;

    relay.stop().await;
    let (sent, msgid) = envelope(a.address());
    a.queue_envelope(&sent, &[b.address().to_owned()]).unwrap();
    let stop = CancellationToken::new();
    let outbox = a.outbox(fast_outbox());
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move { outbox.run(stop).await }
    });
    // Wait until a submission has failed against the stopped relay, then stop A entirely.
    tokio::time::timeout(PATIENCE, async {
        while outbox_attempts(&a).first().copied().unwrap_or(0) < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no failed attempt recorded");
    stop.cancel();
    sender.await.unwrap().unwrap();
    drop(a);

    relay.spawn().await;
    let a = Account::open(&a_dir).unwrap();
    assert_eq!(
        outbox_attempts(&a).len(),
        1,
        "still queued after the restart"
    );
    let mut a_events = a.events().subscribe();
    let stop = CancellationToken::new();
    let outbox = a.outbox(fast_outbox());
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move { outbox.run(stop).await }
    });
    let (key, received) = recv(&mut seen).await;
    assert_eq!(key, format!("mid:{msgid}"));
    assert_eq!(pgp_block(&received), pgp_block(&sent));
    wait_for_event(&mut a_events, |e| matches!(e, Event::EnvelopeSent { .. })).await;
    assert!(outbox_attempts(&a).is_empty());
    relay.wait_for_mailbox_len(b.address(), 0).await;

    stop.cancel();
    b_stop.cancel();
    sender.await.unwrap().unwrap();
    inbox.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_outside_the_trust_anchor_is_refused() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let mut endpoint = relay.endpoint(Security::ImplicitTls);
    // The public roots do not include the relay's self-signed certificate.
    endpoint.trust = kith_core::transport::TrustAnchor::WebPkiRoots;
    let a = Account::create(&account_dir(&dirs, "a"), endpoint).unwrap();
    let mut events = a.events().subscribe();
    let stop = CancellationToken::new();
    let inbox = a.inbox(fast_inbox());
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            inbox
                .run(
                    |_: &Transaction<'_>, _: &Incoming<'_>| Ok::<_, String>(()),
                    stop,
                )
                .await
        }
    });
    let event = wait_for_event(&mut events, |e| {
        matches!(
            e,
            Event::ConnectionChanged(ConnectionState::Connected | ConnectionState::Disconnected)
        )
    })
    .await;
    assert_eq!(
        event,
        Event::ConnectionChanged(ConnectionState::Disconnected)
    );
    let outbox_a = a.outbox(fast_outbox());
    a.queue_envelope(&envelope(a.address()).0, &[a.address().to_owned()])
        .unwrap();
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move { outbox_a.run(stop).await }
    });
    tokio::time::timeout(PATIENCE, async {
        while outbox_attempts(&a).first().copied().unwrap_or(0) < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no failed attempt recorded");
    let error: String = a
        .database()
        .read(|c| Ok(c.query_row("SELECT last_error FROM outbox", [], |r| r.get(0))?))
        .unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    stop.cancel();
    task.await.unwrap().unwrap();
    sender.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_the_handler_rejects_is_rolled_back_dropped_and_reported() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let b = Account::create(
        &account_dir(&dirs, "b"),
        relay.endpoint(Security::ImplicitTls),
    )
    .unwrap();
    let mut events = b.events().subscribe();
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let mut store = storing_handler(seen_tx);
    // Writes a row, then refuses the envelope: the row must not survive.
    let handler = move |tx: &Transaction<'_>, incoming: &Incoming<'_>| {
        store(tx, incoming).map_err(|e| e.to_string())?;
        Err::<(), _>("not a Kith envelope".to_owned())
    };
    let stop = CancellationToken::new();
    let inbox = start_inbox(&b, handler, stop.clone()).await;
    relay
        .deliver(b.address(), &envelope("x@relay.test").0)
        .await;
    let event = wait_for_event(&mut events, |e| matches!(e, Event::IncomingDropped { .. })).await;
    assert_eq!(
        event,
        Event::IncomingDropped {
            reason: "not a Kith envelope".into()
        }
    );
    relay.wait_for_mailbox_len(b.address(), 0).await;
    assert!(
        message_rows(&b).is_empty(),
        "the handler's writes were rolled back"
    );
    stop.cancel();
    inbox.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_kith_envelope_passes_the_relay_and_opens_in_the_handler() {
    use kith_crypto::envelope::{open, seal, OpenKey, SealKey, SymmetricKey, SymmetricKind};
    use kith_crypto::frame::{Frame, FrameKind};

    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let endpoint = relay.endpoint(Security::ImplicitTls);
    let a = Account::create(&account_dir(&dirs, "a"), endpoint.clone()).unwrap();
    let b = Account::create(&account_dir(&dirs, "b"), endpoint).unwrap();
    let key = Arc::new(SymmetricKey::new(SymmetricKind::Epoch, [7; 32]));
    let (opened_tx, mut opened) = mpsc::unbounded_channel();
    let handler = {
        let key = Arc::clone(&key);
        move |_: &Transaction<'_>, incoming: &Incoming<'_>| {
            let frame =
                open(incoming.bytes, OpenKey::Symmetric(&key)).map_err(|e| e.to_string())?;
            let _ = opened_tx.send(frame);
            Ok::<_, String>(())
        }
    };
    let stop = CancellationToken::new();
    let inbox = start_inbox(&b, handler, stop.clone()).await;
    let outbox = a.outbox(fast_outbox());
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move { outbox.run(stop).await }
    });

    let frame = Frame {
        kind: FrameKind::Mls,
        payload: b"an MLS message".to_vec(),
    };
    let sealed = seal(
        &frame,
        SealKey::Symmetric(&key),
        a.address(),
        1_800_000_000,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    a.queue_envelope(&sealed, &[b.address().to_owned()])
        .unwrap();
    let received = tokio::time::timeout(PATIENCE, opened.recv())
        .await
        .expect("never opened")
        .unwrap();
    assert_eq!(received, frame);
    relay.wait_for_mailbox_len(b.address(), 0).await;

    stop.cancel();
    inbox.await.unwrap().unwrap();
    sender.await.unwrap().unwrap();
}
