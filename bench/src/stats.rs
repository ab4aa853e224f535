//! Latency samples and their percentiles (nearest-rank, exact: we keep every sample).
use std::time::Duration;

use serde::Serialize;

/// Every latency sample of one run, in microseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples {
    micros: Vec<u64>,
    is_sorted: bool,
}

/// The figures reported for a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Number of samples.
    pub(crate) count: usize,
    /// Smallest sample.
    pub(crate) min_ms: f64,
    /// Arithmetic mean.
    pub(crate) mean_ms: f64,
    /// Median (nearest rank).
    pub(crate) p50_ms: f64,
    /// 90th percentile (nearest rank).
    pub(crate) p90_ms: f64,
    /// 99th percentile (nearest rank).
    pub(crate) p99_ms: f64,
    /// Largest sample.
    pub(crate) max_ms: f64,
}

impl Samples {
    /// Adds one sample.
    pub(crate) fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.micros.push(micros);
        self.is_sorted = false;
    }

    /// Adds every sample of `other`.
    pub(crate) fn merge(&mut self, other: &Samples) {
        self.micros.extend_from_slice(&other.micros);
        self.is_sorted = false;
    }

    /// Number of samples recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.micros.len()
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100), or `None` without samples.
    ///
    /// Nearest rank: the smallest sample such that at least p % of all samples are ≤ it.
    pub(crate) fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.micros.is_empty() {
            return None;
        }
        self.sort();
        let n = self.micros.len();
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
        let index = rank.clamp(1, n) - 1;
        Some(Duration::from_micros(self.micros[index]))
    }

    /// Count, min, mean, p50, p90, p99 and max; `None` without samples.
    pub(crate) fn summary(&mut self) -> Option<Summary> {
        let n = self.micros.len();
        if n == 0 {
            return None;
        }
        self.sort();
        let ms = |micros: u64| micros as f64 / 1000.0;
        let total: u128 = self.micros.iter().map(|&m| u128::from(m)).sum();
        let mut pct = |p: f64| self.percentile(p).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let (p50_ms, p90_ms, p99_ms) = (pct(50.0), pct(90.0), pct(99.0));
        Some(Summary {
            count: n,
            min_ms: ms(self.micros[0]),
            mean_ms: total as f64 / n as f64 / 1000.0,
            p50_ms,
            p90_ms,
            p99_ms,
            max_ms: ms(self.micros[n - 1]),
        })
    }

    fn sort(&mut self) {
        if !self.is_sorted {
            self.micros.sort_unstable();
            self.is_sorted = true;
        }
    }
}

/// Events per second over `elapsed`; zero when no time passed.
pub(crate) fn rate_per_sec(events: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        events as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples_ms(values: &[u64]) -> Samples {
        let mut s = Samples::default();
        for &v in values {
            s.record(Duration::from_millis(v));
        }
        s
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let values: Vec<u64> = (1..=100).rev().collect();
        let mut s = samples_ms(&values);
        assert_eq!(s.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(s.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(s.percentile(0.5), Some(Duration::from_millis(1)));
    }

    #[test]
    fn small_sets_round_up_to_the_next_rank() {
        let mut s = samples_ms(&[10, 30, 20]);
        // 50 % of 3 = 1.5 → rank 2 → the second smallest.
        assert_eq!(s.percentile(50.0), Some(Duration::from_millis(20)));
        // 99 % of 3 = 2.97 → rank 3 → the largest.
        assert_eq!(s.percentile(99.0), Some(Duration::from_millis(30)));
    }

    #[test]
    fn summary_has_min_mean_max() {
        let mut s = samples_ms(&[4, 1, 7]);
        let summary = s.summary().expect("three samples");
        assert_eq!(summary.count, 3);
        assert_eq!(summary.min_ms, 1.0);
        assert_eq!(summary.max_ms, 7.0);
        assert_eq!(summary.mean_ms, 4.0);
        assert_eq!(summary.p50_ms, 4.0);
    }

    #[test]
    fn recording_after_a_percentile_resorts() {
        let mut s = samples_ms(&[5, 6]);
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(6)));
        s.record(Duration::from_millis(1));
        assert_eq!(s.percentile(1.0), Some(Duration::from_millis(1)));
        assert_eq!(s.len(), 3);
        let mut more = samples_ms(&[0]);
        more.merge(&s);
        assert_eq!(more.len(), 4);
        assert_eq!(more.percentile(100.0), Some(Duration::from_millis(6)));
    }

    #[test]
    fn empty_samples_have_no_summary() {
        let mut s = Samples::default();
        assert_eq!(s.percentile(50.0), None);
        assert!(s.summary().is_none());
    }

    #[test]
    fn rates() {
        assert_eq!(rate_per_sec(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate_per_sec(5, Duration::ZERO), 0.0);
    }
}
