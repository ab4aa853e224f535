//! Leave requests that no admin could read when they were sent (simulator seed 5208).
use kith_core::group::{Event, LEAVE_STEP_SECS};

use super::network::{Network, Order};

fn removed(net: &Network, i: usize) -> bool {
    net.events(i)
        .iter()
        .any(|e| matches!(e, Event::Removed { .. }))
}

fn saw_request(net: &Network, i: usize) -> bool {
    net.events(i)
        .iter()
        .any(|e| matches!(e, Event::LeaveRequested { .. }))
}

/// Lets the admins' ranked plans fall due and delivers what they commit.
fn settle(net: &mut Network) {
    net.run(Order::Sent);
    net.advance(LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
}

#[test]
fn an_admin_that_missed_a_leave_request_gets_it_when_the_leaver_adds_a_device() {
    // Seed 5208: the creator asked to leave; the only other admin was on another branch,
    // could not open the request, and re-joined by a Welcome after it, so nobody answered.
    let (mut net, g) = Network::with_outsiders(3, 2, &[1]);
    net.leave(0, &g);
    net.drop_in_flight_to(1);
    settle(&mut net);
    assert!(!saw_request(&net, 1), "the request never reached device 1");
    assert!(net.has_group(0, &g));
    // The leaver, still an admin, adds a device: it sends its request again in the new
    // epoch, where the other admin (and the newcomer) read it.
    net.add(0, g.clone(), &[2]);
    settle(&mut net);
    assert!(saw_request(&net, 1) && saw_request(&net, 2));
    assert!(removed(&net, 0) && !net.has_group(0, &g));
    net.assert_converged(&g, &[1, 2]);
    assert_eq!(net.members(1, &g).len(), 2);
}

#[test]
fn a_leave_request_nobody_read_is_sent_again_after_an_incoming_add() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1]);
    net.leave(2, &g);
    net.drop_in_flight_to(0);
    net.drop_in_flight_to(1);
    settle(&mut net);
    assert!(net.has_group(2, &g), "no admin read the request");
    // Device 2 merges the add of device 3 and asks again; an admin commits its removal.
    net.add(0, g.clone(), &[3]);
    settle(&mut net);
    assert!(removed(&net, 2) && !net.has_group(2, &g));
    net.assert_converged(&g, &[0, 1, 3]);
    assert_eq!(net.members(3, &g).len(), 3);
}

#[test]
fn a_device_re_added_after_its_leave_does_not_ask_to_leave_again() {
    let (mut net, g) = Network::with_group(2, &[]);
    net.leave(1, &g);
    settle(&mut net);
    assert!(removed(&net, 1) && !net.has_group(1, &g));
    // Re-added while it still holds the removal's parent state: the Welcome is a new
    // membership, and the old request (still among what it sent) is not sent again.
    net.add(0, g.clone(), &[1]);
    settle(&mut net);
    assert!(net.has_group(1, &g));
    net.assert_converged(&g, &[0, 1]);
    assert_eq!(net.members(0, &g).len(), 2);
}
