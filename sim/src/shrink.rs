//! Shrinking a failing schedule: delta debugging (ddmin) over its actions, keeping a
//! candidate only if it still fails the same way.
use std::time::Instant;

use crate::run_schedule;
use crate::schedule::Action;

/// The kind of a violation: its text without the step prefix and without digits.
fn kind(violation: &str) -> String {
    let text = violation.split_once(": ").map_or(violation, |(_, t)| t);
    text.chars()
        .filter(|c| !c.is_ascii_digit())
        .take(40)
        .collect()
}

fn fails_like(seed: u64, n: usize, schedule: &[Action], wanted: &str) -> bool {
    run_schedule(seed, n, schedule)
        .map(|o| o.violations.iter().any(|v| kind(v) == wanted))
        .unwrap_or(false)
}

/// The shortest sub-schedule found before `deadline` that still shows a violation of the
/// same kind as `violation` (ddmin: drop chunks, halving their size when none can go).
pub fn shrink(
    seed: u64,
    n: usize,
    schedule: Vec<Action>,
    violation: &str,
    deadline: Instant,
) -> Vec<Action> {
    let wanted = kind(violation);
    let mut current = schedule;
    let mut chunks = 2usize;
    while current.len() >= 2 && Instant::now() < deadline {
        let size = current.len().div_ceil(chunks);
        let mut reduced = false;
        for start in (0..current.len()).step_by(size) {
            if Instant::now() >= deadline {
                break;
            }
            let mut candidate = current[..start].to_vec();
            candidate.extend_from_slice(&current[(start + size).min(current.len())..]);
            if fails_like(seed, n, &candidate, &wanted) {
                current = candidate;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunks >= current.len() {
                break;
            }
            chunks = (chunks * 2).min(current.len());
        }
    }
    current
}
