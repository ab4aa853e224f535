//! Measures the time from `queue_envelope` on A to B's inbox handler seeing the envelope,
//! through a real kith-relay in process on loopback (SMTP submission + IMAP IDLE, TLS).
//! Sequential sends, 50 envelopes (the relay's default send limit is 60 a minute).
//!
//! `cargo run -p kith-core --example transport_latency`
#[allow(dead_code)]
#[path = "../tests/transport/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{envelope, Relay};
use kith_core::account::Account;
use kith_core::transport::{InboxOptions, Incoming, OutboxOptions, Security};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SAMPLES: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let endpoint = relay.endpoint(Security::ImplicitTls);
    let a = Account::create(&dirs.path().join("a"), endpoint.clone()).unwrap();
    let b = Account::create(&dirs.path().join("b"), endpoint).unwrap();
    let stop = CancellationToken::new();

    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut connected = b.events().subscribe();
    let inbox = b.inbox(InboxOptions::default());
    let handler = move |_: &rusqlite::Transaction<'_>, _: &Incoming<'_>| {
        let _ = seen_tx.send(Instant::now());
        Ok::<_, std::convert::Infallible>(())
    };
    tokio::spawn({
        let stop = stop.clone();
        async move { inbox.run(handler, stop).await }
    });
    harness::wait_for_event(&mut connected, |e| {
        matches!(
            e,
            kith_core::events::Event::ConnectionChanged(
                kith_core::events::ConnectionState::Connected
            )
        )
    })
    .await;
    let outbox = a.outbox(OutboxOptions::default());
    tokio::spawn({
        let stop = stop.clone();
        async move { outbox.run(stop).await }
    });

    let mut a_events = a.events().subscribe();
    let mut latencies = Vec::with_capacity(SAMPLES);
    let mut submits = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let (bytes, _) = envelope(a.address());
        let sent = Instant::now();
        a.queue_envelope(&bytes, &[b.address().to_owned()]).unwrap();
        let received = tokio::time::timeout(Duration::from_secs(60), seen.recv())
            .await
            .expect("envelope lost")
            .expect("handler gone");
        latencies.push(received - sent);
        harness::wait_for_event(&mut a_events, |e| {
            matches!(e, kith_core::events::Event::EnvelopeSent { .. })
        })
        .await;
        submits.push(sent.elapsed());
    }
    // The receiving half alone: the relay's store accepts the envelope directly.
    let mut deliveries = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let (bytes, _) = envelope("someone@relay.test");
        let sent = Instant::now();
        relay.deliver(b.address(), &bytes).await;
        let received = tokio::time::timeout(Duration::from_secs(60), seen.recv())
            .await
            .expect("envelope lost")
            .expect("handler gone");
        deliveries.push(received - sent);
    }
    stop.cancel();
    report(
        "relay store accept -> B's handler (IMAP side only)",
        deliveries,
    );
    report("queue -> B's handler", latencies);
    report(
        "queue -> A's EnvelopeSent (after the 250; seen after B's handler)",
        submits,
    );
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}, {SAMPLES} envelopes, 1 recipient: p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}
