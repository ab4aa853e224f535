//! Latency and throughput: senders submit messages to receivers that sit in IDLE; every
//! message is timed from the start of its SMTP transaction to the arrival of its FETCH
//! response at the receiver.
//!
//! With a rate the schedule is open-loop (message i is due at i / rate, whatever happened
//! to the ones before); without one every sender submits back to back (throughput).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use lettre::Address;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{addresses, Bench};
use crate::imap::{self, Fetched};
use crate::message::MessageBuilder;
use crate::report::Report;
use crate::smtp::Sender;
use crate::stats::{rate_per_sec, Samples};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct FlowPlan {
    /// Messages in total.
    pub(crate) messages: u64,
    /// Submission rate in messages per second, or `None` for as fast as possible.
    pub(crate) rate: Option<f64>,
    /// Concurrent submission connections.
    pub(crate) senders: usize,
    /// Receiving mailboxes (messages go round-robin).
    pub(crate) receivers: usize,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// How long to wait for stragglers after the last submission.
    pub(crate) drain: Duration,
    /// Longest a receiver stays in one IDLE before re-checking.
    pub(crate) idle_poll: Duration,
}

/// What one sender did.
#[derive(Default)]
struct SenderOutcome {
    accepted: u64,
    failed: u64,
    first_error: Option<String>,
    accept_latency: Samples,
    last_accept: Option<Instant>,
}

/// Shared schedule of one run: the next message to send and when each one started.
struct Schedule {
    t0: Instant,
    next: AtomicU64,
    /// Nanoseconds after `t0` at which message i's submission started, plus one (0: never).
    started: Vec<AtomicU64>,
}

/// Runs the plan and reports it under `scenario`.
pub(crate) async fn run(
    bench: &mut Bench,
    plan: &FlowPlan,
    scenario: &'static str,
) -> Result<Report> {
    let receiver_accounts = bench.accounts(plan.receivers).await?;
    let sender_accounts = bench.accounts(plan.senders).await?;
    let builder = Arc::new(MessageBuilder::new(bench.run, &bench.domain, plan.size));
    let stop = CancellationToken::new();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut receivers = JoinSet::new();
    for session in bench.sessions(&receiver_accounts).await? {
        let task = imap::receive(
            session,
            builder.clone(),
            seen_tx.clone(),
            stop.clone(),
            plan.idle_poll,
        );
        receivers.spawn(task);
    }
    drop(seen_tx);
    let recipients = Arc::new(addresses(&receiver_accounts)?);
    let connections = bench.senders(&sender_accounts).await?;
    // Let every receiver reach IDLE before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let schedule = Arc::new(Schedule {
        t0: Instant::now(),
        next: AtomicU64::new(0),
        started: (0..plan.messages).map(|_| AtomicU64::new(0)).collect(),
    });
    let mut senders = JoinSet::new();
    for sender in connections {
        let (schedule, builder, recipients) =
            (schedule.clone(), builder.clone(), recipients.clone());
        senders.spawn(send_loop(sender, schedule, builder, recipients, plan.rate));
    }
    let collected = collect(&mut seen, &mut senders, &schedule, plan).await;
    stop.cancel();
    let mut receiver_errors = Vec::new();
    while let Some(joined) = receivers.join_next().await {
        if let Ok(Err(e)) = joined {
            receiver_errors.push(format!("{e:#}"));
        }
    }
    Ok(report(
        bench,
        plan,
        scenario,
        collected,
        &schedule,
        receiver_errors,
    ))
}

/// One sender: takes the next message number, waits for its slot, submits it.
async fn send_loop(
    mut sender: Sender,
    schedule: Arc<Schedule>,
    builder: Arc<MessageBuilder>,
    recipients: Arc<Vec<Address>>,
    rate: Option<f64>,
) -> SenderOutcome {
    let mut outcome = SenderOutcome::default();
    let total = schedule.started.len() as u64;
    loop {
        let i = schedule.next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        if let Some(rate) = rate {
            let due = schedule.t0 + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let message = builder.build(sender.address(), i);
        let to = &recipients[(i % recipients.len() as u64) as usize..][..1];
        let start = Instant::now();
        let since_t0 = u64::try_from((start - schedule.t0).as_nanos()).unwrap_or(u64::MAX - 1);
        schedule.started[i as usize].store(since_t0 + 1, Ordering::Relaxed);
        match sender.send(to, &message).await {
            Ok(()) => {
                let now = Instant::now();
                outcome.accepted += 1;
                outcome.accept_latency.record(now - start);
                outcome.last_accept = Some(now);
            }
            Err(e) => {
                outcome.failed += 1;
                outcome.first_error.get_or_insert_with(|| format!("{e:#}"));
                schedule.started[i as usize].store(0, Ordering::Relaxed);
                // A broken connection fails every later message too: stop this sender.
                if outcome.failed >= 3 {
                    break;
                }
            }
        }
    }
    sender.quit().await;
    outcome
}

/// What the collector gathered.
struct Collected {
    senders: SenderOutcome,
    latency: Samples,
    delivered: u64,
    last_delivery: Option<Instant>,
}

/// Gathers deliveries until every accepted message arrived or the drain time ran out.
async fn collect(
    seen: &mut mpsc::UnboundedReceiver<Fetched>,
    senders: &mut JoinSet<SenderOutcome>,
    schedule: &Schedule,
    plan: &FlowPlan,
) -> Collected {
    let mut is_delivered = vec![false; plan.messages as usize];
    let mut out = Collected {
        senders: SenderOutcome::default(),
        latency: Samples::default(),
        delivered: 0,
        last_delivery: None,
    };
    let mut senders_left = senders.len();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
    loop {
        if senders_left == 0 && out.delivered >= out.senders.accepted {
            break;
        }
        tokio::select! {
            fetched = seen.recv() => {
                let Some(f) = fetched else { break };
                let Some(slot) = is_delivered.get_mut(f.seq as usize) else { continue };
                let started = schedule.started[f.seq as usize].load(Ordering::Relaxed);
                if *slot || started == 0 {
                    continue;
                }
                *slot = true;
                out.delivered += 1;
                out.last_delivery = Some(f.at);
                let sent = schedule.t0 + Duration::from_nanos(started - 1);
                out.latency.record(f.at.saturating_duration_since(sent));
            }
            Some(joined) = senders.join_next(), if senders_left > 0 => {
                senders_left -= 1;
                if let Ok(o) = joined {
                    merge(&mut out.senders, o);
                }
                if senders_left == 0 {
                    deadline = tokio::time::Instant::now() + plan.drain;
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    out
}

fn merge(into: &mut SenderOutcome, from: SenderOutcome) {
    into.accepted += from.accepted;
    into.failed += from.failed;
    if into.first_error.is_none() {
        into.first_error = from.first_error;
    }
    into.accept_latency.merge(&from.accept_latency);
    into.last_accept = into.last_accept.max(from.last_accept);
}

fn report(
    bench: &Bench,
    plan: &FlowPlan,
    scenario: &'static str,
    mut c: Collected,
    schedule: &Schedule,
    receiver_errors: Vec<String>,
) -> Report {
    let mut r = Report::new(scenario, &bench.label);
    r.parameter("messages", plan.messages);
    if let Some(rate) = plan.rate {
        r.parameter("rate_per_sec", rate);
    }
    r.parameter("senders", plan.senders as u64);
    r.parameter("receivers", plan.receivers as u64);
    r.parameter("size_bytes", plan.size as u64);
    let since = |t: Option<Instant>| t.map_or(Duration::ZERO, |t| t - schedule.t0);
    r.figure("accepted (250)", c.senders.accepted as f64, "msgs");
    r.figure("refused or failed", c.senders.failed as f64, "msgs");
    r.figure("delivered (fetched)", c.delivered as f64, "msgs");
    r.figure(
        "not fetched within the drain time",
        c.senders.accepted.saturating_sub(c.delivered) as f64,
        "msgs",
    );
    let submit = rate_per_sec(c.senders.accepted as usize, since(c.senders.last_accept));
    r.figure("submission rate", submit, "msgs/s");
    let delivery = rate_per_sec(c.delivered as usize, since(c.last_delivery));
    r.figure(
        "delivered rate (first submit → last fetch)",
        delivery,
        "msgs/s",
    );
    r.latency("submit → fetched", c.latency.summary());
    r.latency("submit → 250 accepted", c.senders.accept_latency.summary());
    if let Some(e) = c.senders.first_error {
        r.note(format!("first send error: {e}"));
    }
    if let Some(e) = receiver_errors.first() {
        r.note(format!(
            "{} receiver(s) failed, first: {e}",
            receiver_errors.len()
        ));
    }
    r
}
