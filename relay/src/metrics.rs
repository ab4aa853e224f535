//! Prometheus metrics: counters and one latency histogram, rendered in the text exposition
//! format. Labels carry protocol names and rejection reasons, never addresses.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a message or command was refused; one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Not an encrypted envelope (523 5.7.1).
    NotEncrypted,
    /// MAIL FROM or From header not the authenticated login.
    SenderMismatch,
    /// Larger than the message size limit.
    TooLarge,
    /// Over the per-account send rate.
    RateLimited,
    /// Too many recipients.
    TooManyRecipients,
    /// Unknown local recipient.
    UnknownRecipient,
    /// Wrong password or unknown account.
    BadLogin,
    /// Too many failed logins from one IP.
    LoginRateLimited,
    /// Too many connections from one IP.
    TooManyConnections,
    /// A command that could not be parsed or is not allowed now.
    BadCommand,
}

impl Rejection {
    const ALL: [Rejection; 10] = [
        Rejection::NotEncrypted,
        Rejection::SenderMismatch,
        Rejection::TooLarge,
        Rejection::RateLimited,
        Rejection::TooManyRecipients,
        Rejection::UnknownRecipient,
        Rejection::BadLogin,
        Rejection::LoginRateLimited,
        Rejection::TooManyConnections,
        Rejection::BadCommand,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::NotEncrypted => "not_encrypted",
            Rejection::SenderMismatch => "sender_mismatch",
            Rejection::TooLarge => "too_large",
            Rejection::RateLimited => "rate_limited",
            Rejection::TooManyRecipients => "too_many_recipients",
            Rejection::UnknownRecipient => "unknown_recipient",
            Rejection::BadLogin => "bad_login",
            Rejection::LoginRateLimited => "login_rate_limited",
            Rejection::TooManyConnections => "too_many_connections",
            Rejection::BadCommand => "bad_command",
        }
    }
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (submission or relay-to-relay).
    Smtp,
    /// IMAP.
    Imap,
}

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Every metric the relay exports.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_open: [AtomicU64; 2],
    connections_total: [AtomicU64; 2],
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    messages_fetched: AtomicU64,
    rejections: [AtomicU64; 10],
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// A connection opened; call [`Metrics::connection_closed`] when it closes.
    pub fn connection_opened(&self, protocol: Protocol) {
        self.connections_open[protocol as usize].fetch_add(1, Ordering::Relaxed);
        self.connections_total[protocol as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self, protocol: Protocol) {
        self.connections_open[protocol as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// A message was accepted and stored (submission or inbound federation).
    pub fn message_in(&self) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
    }

    /// A queued message was handed to another relay.
    pub fn message_out(&self) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
    }

    /// A message body was fetched over IMAP.
    pub fn message_fetched(&self) {
        self.messages_fetched.fetch_add(1, Ordering::Relaxed);
    }

    /// Something was refused.
    pub fn rejected(&self, why: Rejection) {
        let index = Rejection::ALL
            .iter()
            .position(|r| *r == why)
            .expect("every variant is in ALL");
        self.rejections[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Time from the end of DATA to the durable commit of a message.
    pub fn observe_store_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The metrics in Prometheus text format; `queue_depth` is read from the store by the
    /// caller.
    pub fn render(&self, queue_depth: u64) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let protocols = [("smtp", 0), ("imap", 1)];
        out.push_str("# TYPE kith_relay_connections_open gauge\n");
        for (name, i) in protocols {
            let _ = writeln!(
                out,
                "kith_relay_connections_open{{protocol=\"{name}\"}} {}",
                get(&self.connections_open[i])
            );
        }
        out.push_str("# TYPE kith_relay_connections_total counter\n");
        for (name, i) in protocols {
            let _ = writeln!(
                out,
                "kith_relay_connections_total{{protocol=\"{name}\"}} {}",
                get(&self.connections_total[i])
            );
        }
        for (name, value) in [
            ("kith_relay_messages_in_total", &self.messages_in),
            ("kith_relay_messages_out_total", &self.messages_out),
            ("kith_relay_messages_fetched_total", &self.messages_fetched),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", get(value));
        }
        out.push_str("# TYPE kith_relay_rejections_total counter\n");
        for (why, counter) in Rejection::ALL.iter().zip(&self.rejections) {
            let _ = writeln!(
                out,
                "kith_relay_rejections_total{{reason=\"{}\"}} {}",
                why.label(),
                get(counter)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE kith_relay_queue_depth gauge\nkith_relay_queue_depth {queue_depth}"
        );
        out.push_str("# TYPE kith_relay_store_latency_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "kith_relay_store_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "kith_relay_store_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = get(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "kith_relay_store_latency_seconds_sum {sum}\nkith_relay_store_latency_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_reflect_what_was_recorded() {
        let metrics = Metrics::default();
        metrics.connection_opened(Protocol::Imap);
        metrics.connection_opened(Protocol::Imap);
        metrics.connection_closed(Protocol::Imap);
        metrics.message_in();
        metrics.rejected(Rejection::NotEncrypted);
        metrics.observe_store_latency(Duration::from_millis(3));
        let text = metrics.render(7);
        for line in [
            "kith_relay_connections_open{protocol=\"imap\"} 1",
            "kith_relay_connections_total{protocol=\"imap\"} 2",
            "kith_relay_messages_in_total 1",
            "kith_relay_rejections_total{reason=\"not_encrypted\"} 1",
            "kith_relay_rejections_total{reason=\"bad_login\"} 0",
            "kith_relay_queue_depth 7",
            "kith_relay_store_latency_seconds_bucket{le=\"0.0025\"} 0",
            "kith_relay_store_latency_seconds_bucket{le=\"0.005\"} 1",
            "kith_relay_store_latency_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
