//! Loopback addresses for relays started on one machine: the embedded demo and the
//! tests start several relays side by side and must give each its own ports.
//!
//! `bind("127.0.0.1:0")` and then closing the socket is racy: the kernel hands the same
//! ephemeral port to the next outgoing connection or to a parallel test, and the relay
//! then fails with "address in use". Ports here come from below the kernel's ephemeral
//! range (32768–60999 on Linux), from a process-wide counter that starts at an offset
//! derived from the process id, so two calls in one process never return the same port
//! and no client socket is ever given one of them.
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The first port of the pool.
const FIRST: u32 = 20_000;
/// How many ports the pool holds (20000..32000, below the ephemeral range).
const SPAN: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback address whose port no earlier call in this process returned and that
/// was free when checked. Panics if the whole pool is taken.
pub fn free_addr() -> SocketAddr {
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(337) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_below_the_ephemeral_range_and_bindable() {
        let addrs: Vec<SocketAddr> = (0..50).map(|_| free_addr()).collect();
        let mut ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 50);
        assert!(ports.iter().all(|&p| (20_000..32_000).contains(&p)));
        let held = TcpListener::bind(addrs[0]).unwrap();
        let next = free_addr();
        assert_ne!(next, held.local_addr().unwrap());
        assert!(TcpListener::bind(next).is_ok());
    }
}
