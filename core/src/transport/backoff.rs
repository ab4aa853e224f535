//! Exponential backoff with jitter, for reconnects and outbox retries.
use std::time::Duration;

use rand::Rng;

/// Doubling delays from `initial` up to `max`, each with up to 25 % random jitter added so
/// that many clients that lost the same relay do not all come back at the same instant.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay to wait now; the following one doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        with_jitter(base)
    }

    /// Back to the initial delay (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// The delay before retry number `attempt` (0-based): `initial · 2^attempt`, at most `max`,
/// plus jitter.
pub(crate) fn delay_for_attempt(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
    with_jitter(initial.saturating_mul(factor).min(max))
}

fn with_jitter(base: Duration) -> Duration {
    let quarter = base.as_millis() as u64 / 4;
    let jitter = if quarter == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..=quarter)
    };
    base + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_and_reset() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut backoff = Backoff::new(initial, max);
        let bases = [100, 200, 400, 800, 1000, 1000];
        for base in bases {
            let delay = backoff.next_delay().as_millis() as u64;
            assert!(
                (base..=base + base / 4).contains(&delay),
                "{delay} vs {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(125));
    }

    #[test]
    fn attempt_delays_are_capped_even_for_huge_attempt_counts() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(300));
        assert!(delay_for_attempt(0, initial, max) < Duration::from_millis(1251));
        assert!(delay_for_attempt(3, initial, max) >= Duration::from_secs(8));
        assert!(delay_for_attempt(u32::MAX, initial, max) <= Duration::from_secs(375));
    }
}
