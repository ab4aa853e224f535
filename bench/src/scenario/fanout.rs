//! Fan-out: one message, one SMTP transaction, N local recipients each sitting in IDLE.
//! Measured per recipient from the start of the transaction to its `* n EXISTS` (notified)
//! and to its FETCH response (fetched); per round, the time until the last one was notified.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{addresses, Bench};
use crate::imap::{self, Session};
use crate::message::MessageBuilder;
use crate::report::Report;
use crate::stats::Samples;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct FanoutPlan {
    /// Recipients of the one message.
    pub(crate) recipients: usize,
    /// How many messages, one after the other.
    pub(crate) rounds: u64,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// How long a recipient waits for its notification before giving up.
    pub(crate) limit: Duration,
}

/// One recipient's view of one round.
struct Seen {
    round: u64,
    notified: Instant,
    fetched: Option<Instant>,
}

/// Runs the plan.
pub(crate) async fn run(bench: &mut Bench, plan: &FanoutPlan) -> Result<Report> {
    let recipient_accounts = bench.accounts(plan.recipients).await?;
    let sender_account = bench.accounts(1).await?;
    let builder = Arc::new(MessageBuilder::new(bench.run, &bench.domain, plan.size));
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    for session in bench.sessions(&recipient_accounts).await? {
        let (ready_tx, seen_tx, builder) = (ready_tx.clone(), seen_tx.clone(), builder.clone());
        tasks.spawn(recipient(session, plan.clone(), builder, ready_tx, seen_tx));
    }
    drop((ready_tx, seen_tx));
    let all = addresses(&recipient_accounts)?;
    let mut sender = bench.senders(&sender_account).await?.remove(0);
    let (mut notified, mut fetched, mut last_notified) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut accepted = Samples::default();
    let mut missing = 0usize;
    for round in 0..plan.rounds {
        let waiting = wait_ready(&mut ready, plan.recipients, plan.limit).await;
        // IDLE is confirmed by the server's continuation; give the last ones a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let message = builder.build(sender.address(), round);
        let start = Instant::now();
        sender
            .send(&all, &message)
            .await
            .context("fan-out submission")?;
        accepted.record(start.elapsed());
        let mut slowest = Duration::ZERO;
        let mut count = 0;
        while count < waiting {
            let got = tokio::time::timeout(plan.limit + Duration::from_secs(5), seen.recv()).await;
            let Ok(Some(s)) = got else { break };
            if s.round != round {
                continue;
            }
            count += 1;
            let d = s.notified.saturating_duration_since(start);
            notified.record(d);
            slowest = slowest.max(d);
            if let Some(f) = s.fetched {
                fetched.record(f.saturating_duration_since(start));
            }
        }
        missing += plan.recipients - count;
        last_notified.record(slowest);
    }
    sender.quit().await;
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined {
            errors.push(format!("{e:#}"));
        }
    }
    let mut r = Report::new("fanout", &bench.label);
    r.parameter("recipients", plan.recipients as u64);
    r.parameter("rounds", plan.rounds);
    r.parameter("size_bytes", plan.size as u64);
    r.figure("notifications missing", missing as f64, "recipients");
    r.latency("submit → 250 (1 txn, N RCPT)", accepted.summary());
    r.latency("last recipient notified", last_notified.summary());
    r.latency("submit → EXISTS (each)", notified.summary());
    r.latency("submit → fetched (each)", fetched.summary());
    if let Some(e) = errors.first() {
        r.note(format!("{} recipient(s) failed, first: {e}", errors.len()));
    }
    Ok(r)
}

/// Waits until `n` recipients are in IDLE or `limit` passes; returns how many are.
async fn wait_ready(ready: &mut mpsc::UnboundedReceiver<()>, n: usize, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut count = 0;
    while count < n {
        match tokio::time::timeout_at(deadline, ready.recv()).await {
            Ok(Some(())) => count += 1,
            _ => break,
        }
    }
    count
}

/// One recipient: for every round, enter IDLE, say so, wait for EXISTS, fetch and delete.
async fn recipient(
    mut session: Session,
    plan: FanoutPlan,
    builder: Arc<MessageBuilder>,
    ready: mpsc::UnboundedSender<()>,
    seen: mpsc::UnboundedSender<Seen>,
) -> Result<()> {
    session.select("INBOX").await.context("SELECT INBOX")?;
    let mut next_uid = 1;
    imap::fetch_and_delete(&mut session, &mut next_uid, &builder).await?;
    for round in 0..plan.rounds {
        let mut idle = session.idle();
        idle.init().await.context("IDLE")?;
        let _ = ready.send(());
        let (notified, s) = imap::wait_for_exists(idle, plan.limit).await?;
        session = s;
        let mut fetched = None;
        while fetched.is_none() && notified.elapsed() < plan.limit {
            let found = imap::fetch_and_delete(&mut session, &mut next_uid, &builder).await?;
            fetched = found.iter().find(|f| f.seq == round).map(|f| f.at);
        }
        let _ = seen.send(Seen {
            round,
            notified,
            fetched,
        });
    }
    session.logout().await.context("LOGOUT")?;
    Ok(())
}
