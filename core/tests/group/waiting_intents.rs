//! Intents that outlive the branch they were issued on (simulator seed 695).
use super::network::{Envelope, Network, Order};

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

/// Whether device `i` rolled back to `parent` (a fork there went against it).
fn rolled_back_to(net: &Network, i: usize, parent: u64) -> bool {
    net.events(i).iter().any(|e| {
        matches!(e, kith_core::group::Event::ForkResolved { parent_epoch, .. } if *parent_epoch == parent)
    })
}

/// Admins 0 and 1 both add device 6 on one parent; fork choice keeps one add. The other
/// adder, redoing its intent after the rollback, finds device 6 already in: nothing left
/// to commit. Then admin 3's removal of the winning adder, made on the same parent, beats
/// both adds. On that branch device 6 is not in, and only the losing adder still wants it.
/// A moot intent used to be forgotten, and device 6 stayed out (seed 6229, where it was a
/// removal); it is now tied to the commit that made it moot and asked again when a fork
/// drops that commit.
#[test]
fn a_moot_intent_is_asked_again_when_a_fork_drops_the_commit_that_made_it_moot() {
    let (mut net, g) = Network::with_outsiders(7, 6, &[1, 3]);
    net.add(0, g.clone(), &[6]);
    let from_0 = net.take_in_flight();
    net.add(1, g.clone(), &[6]);
    let from_1 = net.take_in_flight();
    // Device 2 sees both adds: it keeps the winner, whose epoch its adder is in.
    let to = |frames: &[(usize, Envelope)], i: usize| -> Vec<(usize, Envelope)> {
        frames.iter().filter(|(t, _)| *t == i).cloned().collect()
    };
    net.put_in_flight(to(&from_0, 2));
    net.put_in_flight(to(&from_1, 2));
    net.run(Order::Sent);
    let (winner, loser, winning_frames) = match net.epoch(2, &g) == net.epoch(0, &g) {
        true => (0, 1, &from_0),
        false => (1, 0, &from_1),
    };
    assert_eq!(net.epoch(2, &g), net.epoch(winner, &g));
    // The loser hears of the winning add: its own is moot now.
    net.put_in_flight(to(winning_frames, loser));
    net.run(Order::Sent);
    assert_eq!(
        net.epoch(loser, &g),
        net.epoch(winner, &g),
        "the loser took the winning add"
    );
    // Admin 3, at the parent of the adds, removes the winner: a removal beats both adds.
    net.remove(3, &g, &[winner]);
    let rest = |frames: &[(usize, Envelope)]| -> Vec<(usize, Envelope)> {
        frames
            .iter()
            .filter(|(t, _)| *t != 2 && *t != loser)
            .cloned()
            .collect()
    };
    net.put_in_flight(rest(&from_0));
    net.put_in_flight(rest(&from_1));
    net.run(Order::Sent);
    net.advance(1);
    net.run(Order::Sent);
    net.assert_converged(&g, &[loser, 2, 3, 4, 5, 6]);
    assert!(!net.has_group(winner, &g));
}

/// Admins 0 and 1 each add device 3 on the same parent and make it an admin on their
/// branch. Device 3 joins the losing branch first and removes device 2 there; then the
/// winner's Welcome, better by fork choice, moves it to the branch the group kept, where
/// device 2 is still in. A Welcome used to forget the group's rows, the device's intents
/// with them, and device 2 stayed (seed 6229). The removal now goes along and is made on
/// the kept branch.
#[test]
fn a_removal_made_on_a_losing_branch_is_made_again_after_a_better_welcome() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1]);
    let hold_3 =
        |frames: Vec<_>| -> (Vec<_>, Vec<_>) { frames.into_iter().partition(|(to, _)| *to == 3) };
    let parent = net.epoch(0, &g).0;
    let mut to_3 = [Vec::new(), Vec::new()];
    for adder in [0, 1] {
        net.add(adder, g.clone(), &[3]);
        net.make_admin(adder, &g, &[3]);
        let (mine, rest) = hold_3(net.take_in_flight());
        to_3[adder] = mine;
        net.put_in_flight(rest);
    }
    net.run(Order::Sent);
    net.advance(1);
    net.run(Order::Sent);
    assert!(
        rolled_back_to(&net, 0, parent) != rolled_back_to(&net, 1, parent),
        "exactly one add lost fork choice"
    );
    let [from_0, from_1] = to_3;
    let (loser, winner) = match rolled_back_to(&net, 0, parent) {
        true => (from_0, from_1),
        false => (from_1, from_0),
    };
    net.put_in_flight(loser);
    net.run(Order::Sent);
    assert_eq!(
        net.admins(3, &g),
        vec![0, 1, 3],
        "device 3 is an admin there"
    );
    net.remove(3, &g, &[2]);
    let sent_on_the_losing_branch = net.take_in_flight();
    assert!(
        !sent_on_the_losing_branch.is_empty(),
        "device 3 committed the removal"
    );
    net.put_in_flight(winner);
    net.run(Order::Sent);
    net.put_in_flight(sent_on_the_losing_branch);
    net.run(Order::Sent);
    net.advance(1);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 3]);
    assert!(
        !net.has_group(2, &g),
        "the removal was made on the kept branch"
    );
}
