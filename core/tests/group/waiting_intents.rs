//! Intents that outlive the branch they were issued on (simulator seed 695).
use super::network::{Network, Order};

/// Seed 695: admin 0 grants device 1 admin (X); admin 3 removes device 4 on the same
/// parent (Y, a removal: it wins fork choice). Before Y arrives, device 1 — an admin on
/// X — removes device 2. Y moves everyone off X, and device 1 is no admin on Y until
/// admin 0 re-issues its grant there. Device 1's removal used to be dropped as "not an
/// admin" on the way, and device 2 stayed in for good; it now waits for the grant.
#[test]
fn an_admins_intent_waits_for_its_grant_to_be_reissued_after_a_fork() {
    let (mut net, g) = Network::with_group(5, &[3]);
    net.make_admin(0, &g, &[1]);
    let x = net.take_in_flight();
    net.remove(3, &g, &[4]);
    let y = net.take_in_flight();
    let (x_to_3, x_rest): (Vec<_>, Vec<_>) = x.into_iter().partition(|(to, _)| *to == 3);
    net.put_in_flight(x_rest);
    net.run(Order::Sent);
    assert_eq!(
        net.admins(1, &g),
        vec![0, 1, 3],
        "device 1 is an admin on X"
    );
    net.remove(1, &g, &[2]);
    net.run(Order::Sent);
    assert_eq!(net.members(0, &g).len(), 4, "device 2 is removed on X");
    // Y and X meet: Y wins on every device.
    net.put_in_flight(y);
    net.put_in_flight(x_to_3);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 3]);
    assert_eq!(
        net.admins(1, &g),
        vec![0, 1, 3],
        "admin 0 re-issued its grant"
    );
    let members: Vec<String> = net.members(0, &g).into_iter().map(|m| m.address).collect();
    assert_eq!(members.len(), 3, "devices 2 and 4 are removed: {members:?}");
    assert!(!net.has_group(2, &g) && !net.has_group(4, &g));
}

/// The same fork, but Y removes admin 0, so nobody re-issues the grant on the winning
/// branch: device 1's removal waits for good, and must not make its engine ask for a timer
/// over and over (a client would spin on `handle_timeout`).
#[test]
fn an_intent_that_waits_for_admin_rights_sets_no_timer() {
    let (mut net, g) = Network::with_group(4, &[3]);
    net.make_admin(0, &g, &[1]);
    let x = net.take_in_flight();
    net.remove(3, &g, &[0]);
    let y = net.take_in_flight();
    let (x_to_3, x_rest): (Vec<_>, Vec<_>) = x.into_iter().partition(|(to, _)| *to == 3);
    net.put_in_flight(x_rest);
    net.run(Order::Sent);
    net.remove(1, &g, &[2]);
    net.run(Order::Sent);
    net.put_in_flight(y);
    net.put_in_flight(x_to_3);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    net.assert_converged(&g, &[1, 2, 3]);
    assert_eq!(net.admins(1, &g), vec![0, 3], "device 1 is no admin on Y");
    assert!(!net.has_group(0, &g), "Y removed admin 0");
    assert_eq!(
        net.poll_timeout(1),
        None,
        "the waiting intent sets no timer"
    );
    // Once admin 3 makes device 1 an admin, the removal goes ahead.
    net.make_admin(3, &g, &[1]);
    net.run(Order::Sent);
    assert!(net.poll_timeout(1).is_some(), "the grant wakes the intent");
    net.advance(1);
    net.run(Order::Sent);
    net.assert_converged(&g, &[1, 3]);
    assert!(!net.has_group(2, &g));
}
