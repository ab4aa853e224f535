//! Welcomes judged against the group state a device already holds (simulator seed 486).
use kith_core::group::{Event, GroupId};

use super::network::{Envelope, Network, Order};

/// Frames in flight, each with the index of the device it goes to.
type Frames = Vec<(usize, Envelope)>;

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
/// Two admins add device 3 on one parent; returns each adder's frames to device 3, the
/// loser's first, after the rest has been delivered (so that fork choice has settled).
fn competing_adds() -> (Network, GroupId, Frames, Frames) {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1]);
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
    match rolled_back(&net, 0) {
        true => (net, g, from_0, from_1),
        false => (net, g, from_1, from_0),
    }
}

fn assert_on_the_winning_branch(mut net: Network, g: &GroupId) {
    net.assert_converged(g, &[0, 1, 2, 3]);
    net.send_text(3, g, "on the winning branch");
    net.run(Order::Sent);
    net.assert_each_shown_once(g, &[0, 1, 2, 3], &["on the winning branch"]);
}

/// Device 3 first hears from the adder whose commit lost, then gets the winner's Welcome
/// before the winner's `JoinHash`. Judged without that hash, the Welcome's chain ties with
/// the device's own at the parent of the adds and is ignored; the device used to stay on
/// the dead branch for good (seed 486). Now the Welcome waits and is judged again when its
/// join hash arrives.
#[test]
fn a_welcome_ignored_before_its_join_hash_is_taken_when_the_hash_arrives() {
    let (mut net, g, losers, winners) = competing_adds();
    net.put_in_flight(losers);
    net.run(Order::Sent);
    // The winner's frames in the order sent: its Welcome comes before its join hash.
    net.put_in_flight(winners);
    net.run(Order::Sent);
    assert_on_the_winning_branch(net, &g);
}

/// Device 3 joins with the loser's Welcome; the winner's join hash comes next, then the
/// loser's, then the winner's Welcome. The device must fill in the loser's hash — not the
/// winner's, which names the add of the Welcome still to come (seed 6079: the winner's
/// hash was taken as the device's own and used up, and the winner's Welcome then looked
/// no better).
#[test]
fn a_device_takes_the_join_hash_of_the_adder_whose_welcome_it_joined_with() {
    deliver_in_turn(|loser, winner| [loser.welcome, winner.hash, loser.hash, winner.welcome]);
}

/// One adder's frames to device 3: its join hash and its Welcome.
struct FromAdder {
    hash: Frames,
    welcome: Frames,
}

/// Competing adds of device 3; their frames reach it in the order `order` gives, one
/// batch after the other; device 3 must end on the winning branch.
fn deliver_in_turn(order: impl FnOnce(FromAdder, FromAdder) -> [Frames; 4]) {
    let (mut net, g, losers, winners) = competing_adds();
    let split = |frames: Frames| {
        let (hash, welcome) = frames
            .into_iter()
            .partition(|(_, envelope)| envelope.is_control());
        FromAdder { hash, welcome }
    };
    for frames in order(split(losers), split(winners)) {
        net.put_in_flight(frames);
        net.run(Order::Sent);
    }
    assert_on_the_winning_branch(net, &g);
}

/// Seed 1391: the winner's join hash comes first (kept), then the loser's Welcome (device 3
/// joins with it, the hash of its own add still unknown), then the winner's Welcome — its
/// lineage complete, but tying with the device's unhashed join — and the loser's join hash
/// last. The winner's Welcome used to be ignored for good: only a Welcome missing its *own*
/// add's hash waited. It now also waits while the device's join is unhashed, and the
/// loser's hash, filled in first, decides.
#[test]
fn a_welcome_that_tied_with_our_unhashed_join_is_taken_when_our_hash_arrives() {
    deliver_in_turn(|loser, winner| [winner.hash, loser.welcome, winner.welcome, loser.hash]);
}

/// Seed 6117: a device that a commit (tentatively) removed took any Welcome, also a late
/// duplicate of the one it had joined with, which put it back on an epoch the group had
/// left long ago, alone there for good. It now judges a Welcome by its lineage as any
/// member does: the duplicate is no better; a Welcome that re-adds it is.
#[test]
fn a_tentatively_removed_device_ignores_a_duplicate_of_its_old_welcome() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1]);
    net.add(0, g.clone(), &[3]);
    let sent = net.take_in_flight();
    let duplicate: Frames = sent.iter().filter(|(to, _)| *to == 3).cloned().collect();
    net.put_in_flight(sent);
    net.run(Order::Sent);
    net.self_update(2, &g);
    net.run(Order::Sent);
    net.remove(1, &g, &[3]);
    net.run(Order::Sent);
    assert!(!net.has_group(3, &g), "device 3 is (tentatively) removed");
    net.put_in_flight(duplicate);
    net.run(Order::Sent);
    assert!(
        !net.has_group(3, &g),
        "the old Welcome did not put device 3 back"
    );
    net.add(0, g.clone(), &[3]);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2, 3]);
}
