//! In-memory rate limits: connections per IP, failed logins per IP, messages per account.
//!
//! IP addresses are held only in memory, only while they count against a limit, and never
//! logged. Time comes in as an argument so that windows are testable.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Limits;

const WINDOW: Duration = Duration::from_secs(60);

/// Shared limiter for every listener.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    connections: Arc<Mutex<HashMap<IpAddr, u32>>>,
    failed_logins: Mutex<Windows<IpAddr>>,
    sends: Mutex<Windows<String>>,
}

/// Holds one connection slot for an IP address; frees it on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    ip: IpAddr,
    connections: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut map = self
            .connections
            .lock()
            .expect("limiter lock is never poisoned");
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            connections: Arc::default(),
            failed_logins: Mutex::new(Windows::default()),
            sends: Mutex::new(Windows::default()),
        }
    }

    /// Takes a connection slot for `ip`, or `None` if it has too many open already.
    pub fn try_connect(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut map = self
            .connections
            .lock()
            .expect("limiter lock is never poisoned");
        let count = map.entry(ip).or_insert(0);
        if *count >= self.limits.connections_per_ip {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            ip,
            connections: Arc::clone(&self.connections),
        })
    }

    /// Whether `ip` may try to log in now (it has not failed too often this minute).
    pub fn may_try_login(&self, ip: IpAddr, now: Instant) -> bool {
        let mut windows = self
            .failed_logins
            .lock()
            .expect("limiter lock is never poisoned");
        windows.count(&ip, now) < self.limits.failed_logins_per_ip_per_minute
    }

    /// Records a failed login from `ip`.
    pub fn record_failed_login(&self, ip: IpAddr, now: Instant) {
        let mut windows = self
            .failed_logins
            .lock()
            .expect("limiter lock is never poisoned");
        windows.add(ip, now);
    }

    /// Counts one message sent by `account`; `false` (and not counted) if the account is over
    /// its per-minute rate.
    pub fn try_send(&self, account: &str, now: Instant) -> bool {
        let mut windows = self.sends.lock().expect("limiter lock is never poisoned");
        if windows.count(&account.to_owned(), now) >= self.limits.send_per_minute {
            return false;
        }
        windows.add(account.to_owned(), now);
        true
    }
}

/// Fixed one-minute windows of counts per key.
#[derive(Debug)]
struct Windows<K> {
    counts: HashMap<K, (Instant, u32)>,
    last_sweep: Option<Instant>,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Self {
            counts: HashMap::new(),
            last_sweep: None,
        }
    }
}

impl<K: Hash + Eq> Windows<K> {
    fn count(&mut self, key: &K, now: Instant) -> u32 {
        match self.counts.get(key) {
            Some((start, n)) if now.duration_since(*start) < WINDOW => *n,
            _ => 0,
        }
    }

    fn add(&mut self, key: K, now: Instant) {
        self.sweep(now);
        let entry = self.counts.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Forgets expired windows once a minute, so memory follows the active keys only.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.duration_since(last) < WINDOW)
        {
            return;
        }
        self.counts
            .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        self.last_sweep = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> Limiter {
        Limiter::new(Limits {
            connections_per_ip: 2,
            failed_logins_per_ip_per_minute: 3,
            send_per_minute: 2,
            ..Limits::default()
        })
    }

    #[test]
    fn connection_slots_are_counted_and_freed() {
        let limiter = limiter();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let a = limiter.try_connect(ip).unwrap();
        let _b = limiter.try_connect(ip).unwrap();
        assert!(limiter.try_connect(ip).is_none());
        assert!(limiter.try_connect(other).is_some());
        drop(a);
        assert!(limiter.try_connect(ip).is_some());
    }

    #[test]
    fn failed_logins_block_until_the_window_passes() {
        let limiter = limiter();
        let ip: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.may_try_login(ip, t0));
            limiter.record_failed_login(ip, t0);
        }
        assert!(!limiter.may_try_login(ip, t0 + Duration::from_secs(59)));
        assert!(limiter.may_try_login(ip, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn sends_are_limited_per_account() {
        let limiter = limiter();
        let t0 = Instant::now();
        assert!(limiter.try_send("a@x", t0));
        assert!(limiter.try_send("a@x", t0));
        assert!(!limiter.try_send("a@x", t0));
        assert!(limiter.try_send("b@x", t0));
        assert!(limiter.try_send("a@x", t0 + WINDOW));
    }
}
