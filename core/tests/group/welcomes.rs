//! Welcomes judged against the group state a device already holds (simulator seed 486).
use kith_core::group::Event;

use super::network::{Envelope, Network, Order};

fn rolled_back(net: &Network, i: usize) -> bool {
    net.events(i)
        .iter()
        .any(|e| matches!(e, Event::ForkResolved { .. }))
}

/// Two admins add device 3 on one parent. Device 3 first hears from the adder whose commit
/// lost, then gets the winner's Welcome before the winner's `JoinHash`. Judged without
/// that hash, the Welcome's chain ties with the device's own at the parent of the adds and
/// is ignored; the device used to stay on the dead branch for good. Now the Welcome waits
/// and is judged again when its join hash arrives.
#[test]
fn a_welcome_ignored_before_its_join_hash_is_taken_when_the_hash_arrives() {
    let mut net = Network::new(4);
    let g = net.create(0, "g");
    net.add(0, g.clone(), &[1, 2]);
    net.run(Order::Sent);
    net.make_admin(0, &g, &[1]);
    net.run(Order::Sent);
    let to_3 = |frames: Vec<(usize, Envelope)>| -> (Vec<_>, Vec<_>) {
        frames.into_iter().partition(|(to, _)| *to == 3)
    };
    net.add(0, g.clone(), &[3]);
    let (from_0, rest_0) = to_3(net.take_in_flight());
    net.add(1, g.clone(), &[3]);
    let (from_1, rest_1) = to_3(net.take_in_flight());
    net.put_in_flight(rest_0);
    net.put_in_flight(rest_1);
    net.run(Order::Sent);
    assert!(
        rolled_back(&net, 0) != rolled_back(&net, 1),
        "exactly one adder lost fork choice"
    );
    let (losers, winners) = match rolled_back(&net, 0) {
        true => (from_0, from_1),
        false => (from_1, from_0),
    };
    net.put_in_flight(losers);
    net.run(Order::Sent);
    // The winner's frames in the order sent: its Welcome comes before its join hash.
    net.put_in_flight(winners);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2, 3]);
    net.send_text(3, &g, "on the winning branch");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 2, 3], &["on the winning branch"]);
}
