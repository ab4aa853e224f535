//! Federation: the queue runner that hands queued messages to other relays.
//!
//! One task owns the runner. It takes due queue entries, delivers each in its own task
//! (static route or MX lookup, then lettre over STARTTLS), and records the outcome: delivered
//! or permanently refused → the entry is removed; a temporary failure → retried with
//! exponential backoff, until `give_up_after_hours`. It wakes at once when a new remote
//! message is queued (`RelayContext::outbound`), otherwise when the next entry falls due.
//! Delivery is at least once: a relay killed between a hand-off and its bookkeeping hands
//! the message over again, and the receiving relay de-duplicates it by Message-ID.
mod delivery;

use std::collections::HashSet;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::config::Federation;
use crate::context::{unix_now, RelayContext};
use crate::store::{QueueItem, UnixTime};
pub(crate) use delivery::Outcome;

/// Most deliveries running at once.
const MAX_IN_FLIGHT: usize = 32;
/// Longest sleep between queue checks when nothing is due (a safety net for missed wakes).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs the outbound queue until shutdown.
pub(crate) async fn run_queue(ctx: RelayContext) {
    let resolver = delivery::Resolver::new();
    let mut in_flight: HashSet<i64> = HashSet::new();
    let mut tasks: JoinSet<(QueueItem, Outcome)> = JoinSet::new();
    loop {
        let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        if free > 0 {
            match ctx
                .store
                .due_queue_items(unix_now(), free + in_flight.len())
                .await
            {
                Ok(items) => {
                    for item in items {
                        if !in_flight.insert(item.id) {
                            continue;
                        }
                        let (ctx, resolver) = (ctx.clone(), resolver.clone());
                        tasks.spawn(async move {
                            let outcome = delivery::deliver(&item, &ctx, &resolver).await;
                            (item, outcome)
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the queue"),
            }
        }
        let sleep = sleep_until_due(&ctx, !in_flight.is_empty()).await;
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            () = ctx.outbound.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((item, outcome)) = joined {
                    in_flight.remove(&item.id);
                    record(&ctx, &item, outcome).await;
                }
            }
        }
    }
    tasks.abort_all();
    tracing::debug!("queue runner stopped");
}

/// How long to sleep before looking at the queue again.
async fn sleep_until_due(ctx: &RelayContext, is_busy: bool) -> Duration {
    if is_busy {
        // Completions wake us; still look again now and then for newly due entries.
        return Duration::from_secs(1);
    }
    match ctx.store.next_queue_due().await {
        Ok(Some(due)) => {
            let wait = due.saturating_sub(unix_now()).max(0) as u64;
            Duration::from_secs(wait).min(MAX_SLEEP)
        }
        _ => MAX_SLEEP,
    }
}

/// Records the outcome of one delivery attempt in the store.
async fn record(ctx: &RelayContext, item: &QueueItem, outcome: Outcome) {
    let now = unix_now();
    let result = match outcome {
        Outcome::Delivered => {
            ctx.metrics.message_out();
            tracing::info!(queue_id = item.id, "delivered to the remote relay");
            ctx.store.finish_queue_item(item.id).await
        }
        Outcome::Refused => {
            tracing::warn!(
                queue_id = item.id,
                "the remote relay refused the message permanently; dropped"
            );
            ctx.store.finish_queue_item(item.id).await
        }
        Outcome::Failed => match next_attempt(&ctx.config.federation, item, now) {
            Some(at) => {
                tracing::info!(
                    queue_id = item.id,
                    attempts = item.attempts + 1,
                    retry_in_secs = at - now,
                    "delivery failed; will retry"
                );
                ctx.store.retry_queue_item(item.id, at).await
            }
            None => {
                tracing::warn!(
                    queue_id = item.id,
                    attempts = item.attempts + 1,
                    "delivery kept failing; giving up and dropping the message"
                );
                ctx.store.finish_queue_item(item.id).await
            }
        },
    };
    if let Err(error) = result {
        tracing::warn!(%error, queue_id = item.id, "cannot update the queue");
    }
}

/// When to try again after a failed attempt, or `None` to give up: the delay starts at
/// `retry_initial_secs` and doubles per failure up to `retry_max_secs`.
pub(crate) fn next_attempt(
    config: &Federation,
    item: &QueueItem,
    now: UnixTime,
) -> Option<UnixTime> {
    let give_up_at = item
        .created_at
        .saturating_add((config.give_up_after_hours * 3600) as i64);
    if now >= give_up_at {
        return None;
    }
    let factor = 1u64.checked_shl(item.attempts.min(62)).unwrap_or(u64::MAX);
    let delay = config
        .retry_initial_secs
        .max(1)
        .saturating_mul(factor)
        .min(config.retry_max_secs.max(1));
    Some(now.saturating_add(delay as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(attempts: u32, created_at: UnixTime) -> QueueItem {
        QueueItem {
            id: 1,
            domain: "b.test".into(),
            sender: "a@a.test".into(),
            recipients: vec!["x@b.test".into()],
            body: bytes::Bytes::new(),
            attempts,
            created_at,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_then_gives_up() {
        let config = Federation {
            retry_initial_secs: 30,
            retry_max_secs: 3600,
            give_up_after_hours: 2,
            ..Federation::default()
        };
        let now = 1_000_000;
        let delays: Vec<i64> = (0..9)
            .map(|a| next_attempt(&config, &item(a, now), now).unwrap() - now)
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(
            next_attempt(&config, &item(100, now), now),
            Some(now + 3600)
        );
        assert_eq!(next_attempt(&config, &item(3, now), now + 2 * 3600), None);
    }
}
