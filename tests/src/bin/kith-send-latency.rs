//! kith-send-latency: how long a text takes from `send` on one device until it is shown on
//! the others, through a local relay, for a group of N member devices.
//!
//! ```text
//! cargo run --release -p kith-e2e --bin kith-send-latency -- [MEMBERS] [MESSAGES] [INTERVAL_MS]
//! ```
//! Starts a relay in this process (TLS on loopback, SQLite), N full kith-core clients (each
//! with its IMAP IDLE inbox, SMTP outbox and its own SQLite file), puts them in one group,
//! then has the first device send MESSAGES texts, one every INTERVAL_MS. "Shown" is the
//! client's `MessageReceived` event, emitted after the message is committed to the
//! receiver's database. Prints p50/p99/max per (message, receiver), and of the time until a
//! message is shown on every receiver.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kith_core::events::Event;
use kith_core::group;
use kith_e2e::group::ClientDevice;
use kith_e2e::start_relay;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> Result<u64> {
        args.next()
            .map(|a| a.parse().context("arguments are numbers"))
            .unwrap_or(Ok(default))
    };
    let members = number(2)? as usize;
    let messages = number(100)? as usize;
    let interval = Duration::from_millis(number(200)?);
    if members < 2 {
        bail!("a group needs at least 2 members");
    }
    let relay = start_relay().await?;
    let dirs = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let mut devices = Vec::new();
    for i in 0..members {
        let dir = dirs.path().join(format!("device-{i}"));
        devices.push(ClientDevice::start(&relay, dir, "device", &stop).await?);
    }
    eprintln!("{members} devices logged in; forming the group");
    let (sender, receivers) = devices.split_at_mut(1);
    let sender = &sender[0];
    let group_id = sender.client.create_group("latency")?;
    for device in receivers.iter() {
        sender
            .client
            .add_member(&group_id, &device.client.bundle()?)?;
    }
    let joined = group::Event::Joined {
        group: group_id.clone(),
    };
    for device in receivers.iter_mut() {
        device
            .wait_for(|e| matches!(e, Event::Group(g) if *g == joined))
            .await?;
    }
    eprintln!("group formed; sending {messages} texts");

    // Every receiver reports (message id, when shown) on one channel.
    let (shown_tx, mut shown_rx) = mpsc::unbounded_channel();
    for device in receivers.iter() {
        let mut events = device.client.account().events().subscribe();
        let shown_tx = shown_tx.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let Event::MessageReceived { message, .. } = event {
                    let _ = shown_tx.send((message.0, Instant::now()));
                }
            }
        });
    }
    let mut sent_at = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    for i in 0..messages {
        ticker.tick().await;
        let started = Instant::now();
        let id = sender.client.send_text(&group_id, &format!("text {i}"))?;
        sent_at.insert(id, started);
    }
    let expected = messages * (members - 1);
    let mut per_receiver = Vec::with_capacity(expected);
    let mut until_all: HashMap<String, Duration> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while per_receiver.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((id, at))) = tokio::time::timeout(left, shown_rx.recv()).await else {
            bail!(
                "only {} of {expected} deliveries were shown",
                per_receiver.len()
            );
        };
        let Some(start) = sent_at.get(&id) else {
            continue;
        };
        let latency = at - *start;
        per_receiver.push(latency);
        let slowest = until_all.entry(id).or_default();
        *slowest = (*slowest).max(latency);
    }
    let mut all: Vec<Duration> = until_all.into_values().collect();
    println!("members {members}, messages {messages}, one every {interval:?}");
    println!(
        "send -> shown on a receiver:    {}",
        summary(&mut per_receiver)
    );
    println!("send -> shown on every member:  {}", summary(&mut all));
    stop.cancel();
    relay.ctx.shutdown.cancel();
    Ok(())
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        at(0.5),
        at(0.99),
        at(1.0),
        samples.len()
    )
}
