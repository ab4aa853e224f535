//! Branch-lost frames: devices added on a branch that lost, told so by their adder.
use kith_core::group::{Event, GroupId};

use super::network::{only, Envelope, Network, Order};

type Held = Vec<(usize, Envelope)>;

/// Seed 6229: an adder whose add lost to a commit removing it tells the device it added
/// that its branch is lost (`BranchLost`) — but that branch had removed the adder since,
/// so the device did not find the signer in its tree and kept the dead branch. The frame
/// now carries the adder's certificate, like a fork notice.
#[test]
fn a_branch_lost_frame_from_an_adder_the_branch_removed_is_believed() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1, 2]);
    // Admin 1 removes admin 0 (class 0), held back; admin 0 adds device 3 on the same
    // parent, and only devices 2 and 3 hear of it.
    net.remove(1, &g, &[0]);
    let removal = net.take_in_flight();
    net.add(0, g.clone(), &[3]);
    let add = net.take_in_flight();
    net.put_in_flight(add.into_iter().filter(|(to, _)| *to != 1).collect());
    net.run(Order::Sent);
    assert!(net.has_group(3, &g));
    // On that branch admin 2 removes admin 0 too; device 3 follows.
    net.remove(2, &g, &[0]);
    let second = net.take_in_flight();
    net.put_in_flight(second.into_iter().filter(|(to, _)| *to == 3).collect());
    net.run(Order::Sent);
    // Admin 1's removal wins at the parent: admin 0 tells device 3 its branch is lost.
    net.put_in_flight(removal);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert!(
        !net.has_group(3, &g),
        "device 3 dropped the lost branch whose tree no longer had its adder"
    );
    net.assert_converged(&g, &[1, 2]);
}

/// Seed 6071: the adder's `BranchLost` reached the device before the Welcome it names;
/// the device, not in the group yet, ignored it, then joined the lost branch with the
/// Welcome and stayed there alone. The frame is now kept and judged when a Welcome is
/// taken.
#[test]
fn a_branch_lost_frame_that_comes_before_its_welcome_is_believed_after_it() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1, 2]);
    // Admin 1 removes admin 0 (R); admin 0 adds device 3 on the same parent (A), and
    // only device 2 hears of the add before R.
    net.remove(1, &g, &[0]);
    let r = net.take_in_flight();
    net.add(0, g.clone(), &[3]);
    let (a_to_3, a_rest): (Held, Held) = net
        .take_in_flight()
        .into_iter()
        .partition(|(to, _)| *to == 3);
    net.put_in_flight(a_rest.into_iter().filter(|(to, _)| *to == 2).collect());
    net.run(Order::Sent);
    // R wins: admin 0 tells device 3 its branch is lost, before device 3 has the Welcome.
    net.put_in_flight(r);
    net.run(Order::Sent);
    assert!(!net.has_group(3, &g));
    net.put_in_flight(a_to_3);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert!(
        !net.has_group(3, &g),
        "device 3 did not stay on the lost branch"
    );
    assert!(net
        .events(3)
        .iter()
        .any(|e| matches!(e, Event::Joined { .. })));
    net.assert_converged(&g, &[1, 2]);
}

/// Admin 1 removes admin 0 on parent p (then, if `readd_3`, adds device 3 itself), its
/// frames held back; admin 0, unaware, adds device 3 and makes it an admin, and device 3
/// adds device 4 on that branch. Only devices 3 and 4 have heard of admin 0's branch.
fn device_4_added_on_a_losing_branch(readd_3: bool) -> (Network, GroupId) {
    let (mut net, g) = Network::with_outsiders(5, 3, &[1]);
    net.remove(1, &g, &[0]);
    if readd_3 {
        net.add(1, g.clone(), &[3]);
    }
    let winning = net.take_in_flight();
    net.add(0, g.clone(), &[3]);
    net.make_admin(0, &g, &[3]);
    let (to_3, losing) = split(net.take_in_flight(), 3);
    net.put_in_flight(to_3);
    net.run(Order::Sent);
    assert_eq!(net.admins(3, &g), vec![0, 1, 3]);
    net.add(3, g.clone(), &[4]);
    let (to_4, from_3) = split(net.take_in_flight(), 4);
    net.put_in_flight(to_4);
    net.run(Order::Sent);
    assert!(net.has_group(4, &g), "device 4 joined the losing branch");
    for held in [winning, losing, from_3] {
        net.put_in_flight(held);
    }
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    (net, g)
}

/// The frames to device `i`, and the others.
fn split(frames: Held, i: usize) -> (Held, Held) {
    frames.into_iter().partition(|(to, _)| *to == i)
}

/// Seed 8879: a device that moved to the winning branch by a Welcome left the devices it
/// had added on the losing one there, counting it for good. It now tells them, as an
/// adder removed by the winning commit does.
#[test]
fn an_adder_that_moves_by_a_welcome_tells_the_devices_it_added_that_their_branch_is_lost() {
    let (net, g) = device_4_added_on_a_losing_branch(true);
    assert!(
        !net.has_group(4, &g),
        "device 4 learned that its branch is lost"
    );
    net.assert_converged(&g, &[1, 2, 3]);
}

/// The same, without the Welcome: admin 0's `BranchLost` makes device 3 drop the branch
/// and ask for a re-add, and it passes the news on to device 4.
#[test]
fn a_device_that_asks_to_be_re_added_tells_the_devices_it_added() {
    let (net, g) = device_4_added_on_a_losing_branch(false);
    assert!(!net.has_group(3, &g) && !net.has_group(4, &g));
    net.assert_converged(&g, &[1, 2]);
}

/// Seed 43: a device added on a branch that loses gets its adder's `BranchLost` while a
/// commit on that branch has tentatively removed it. The frame used to be ignored then;
/// a better commit at an earlier parent undid the removal, and the device stayed on the
/// lost branch, counted by nobody. The frame is now judged while tentatively removed too:
/// the device drops the branch and asks to be re-added.
#[test]
fn a_branch_lost_frame_is_believed_while_tentatively_removed() {
    let (mut net, g) = Network::with_outsiders(5, 4, &[1, 2]);
    // On parent p admin 1 removes admin 0 (R, held back); admin 0 adds device 4 (A), and
    // everyone but admin 1 takes it.
    net.remove(1, &g, &[0]);
    let r = net.take_in_flight();
    net.add(0, g.clone(), &[4]);
    let a = net.take_in_flight();
    net.put_in_flight(only(a, &[0, 2, 3, 4]));
    net.run(Order::Sent);
    assert!(net.has_group(4, &g));
    // On p + 1: device 3 self-updates (S1); admin 2 makes device 3 an admin (S2, which
    // beats S1). Admin 0 and device 4 see S1 first, and admin 0 removes device 4 on it.
    net.self_update(3, &g);
    let s1 = net.take_in_flight();
    net.make_admin(2, &g, &[3]);
    let s2 = net.take_in_flight();
    net.put_in_flight(only(s1, &[0, 4]));
    net.run(Order::Sent);
    net.remove(0, &g, &[4]);
    let removal_of_4 = net.take_in_flight();
    net.put_in_flight(only(removal_of_4, &[4]));
    net.run(Order::Sent);
    assert!(!net.has_group(4, &g), "device 4 is tentatively removed");
    // R reaches admin 0: its add lost, and it tells device 4 (still tentatively removed).
    net.put_in_flight(only(r.clone(), &[0]));
    net.run(Order::Sent);
    // S2 would undo device 4's removal; then R reaches everyone else.
    net.put_in_flight(s2);
    net.run(Order::Sent);
    net.put_in_flight(only(r, &[2, 3]));
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    // Device 4 dropped the lost branch and asked its admins for a re-add; admin 2, still
    // on that branch then, re-added it, and re-issued the re-add on the branch kept.
    assert!(net
        .events(4)
        .iter()
        .any(|e| matches!(e, Event::RejoinRequested { .. })));
    net.assert_converged(&g, &[1, 2, 3, 4]);
}

/// Seed 446: a device believed its adder's `BranchLost` and dropped the group; then a
/// duplicate of the Welcome that had put it on the lost branch came. No longer a member,
/// it took it and stayed on that branch, alone. A believed frame is now kept, and every
/// Welcome taken later is judged against it.
#[test]
fn a_duplicate_of_the_welcome_a_believed_branch_lost_frame_names_does_not_take_the_device_back() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1, 2]);
    // Admin 1 removes admin 0 (R), held back; admin 0 adds device 3 on the same parent,
    // and only devices 2 and 3 hear of it.
    net.remove(1, &g, &[0]);
    let r = net.take_in_flight();
    net.add(0, g.clone(), &[3]);
    let add = net.take_in_flight();
    let duplicate: Held = add
        .iter()
        .filter(|(to, envelope)| *to == 3 && envelope.is_device_sealed() && !envelope.is_control())
        .cloned()
        .collect();
    assert_eq!(duplicate.len(), 1, "one Welcome for device 3");
    net.put_in_flight(add.into_iter().filter(|(to, _)| *to != 1).collect());
    net.run(Order::Sent);
    assert!(net.has_group(3, &g));
    // R wins: admin 0 tells device 3 its branch is lost, and device 3 believes it.
    net.put_in_flight(r);
    net.run(Order::Sent);
    assert!(!net.has_group(3, &g), "device 3 believed its adder");
    net.put_in_flight(duplicate);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert!(
        !net.has_group(3, &g),
        "the duplicate Welcome did not take device 3 back to the lost branch"
    );
    net.assert_converged(&g, &[1, 2]);
}

/// Seed 1788: admin 0 makes device 1 an admin (G) while admin 2 removes admin 0 (R) on
/// the same parent; device 1, on G's branch, adds device 3. R wins; device 1 rolls back
/// to it, is no admin there, and its add waits for ever. Nobody had removed device 1, so
/// nobody told device 3, which stayed on the abandoned branch alone. A device that a fork
/// moves off a branch now tells the devices it added there and that are not members on
/// the new one.
#[test]
fn a_device_moved_off_the_branch_it_added_a_device_on_tells_that_device() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[2]);
    net.remove(2, &g, &[0]);
    let r = net.take_in_flight();
    net.make_admin(0, &g, &[1]);
    net.run_only(&[1]);
    net.add(1, g.clone(), &[3]);
    net.run_only(&[3]);
    assert!(net.has_group(3, &g), "device 3 joined G's branch");
    net.put_in_flight(r);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert!(
        !net.has_group(3, &g),
        "device 3 was told its branch is lost and dropped it"
    );
    net.assert_converged(&g, &[1, 2]);
}

/// Fresh seed 10506: like seed 1788, but the device the rolled-back adder re-added on the
/// abandoned branch is a member on the winning branch too (it had been removed and
/// re-added there by the adder). It was not told, as a member, and stayed on the
/// abandoned branch, counting devices that had left it. Every device welcomed into an
/// epoch of the branch left is now told, member or not; one still on that branch drops
/// it and asks to be re-added.
#[test]
fn a_device_re_added_on_a_branch_its_adder_left_is_told_even_if_a_member_there() {
    let (mut net, g) = Network::with_outsiders(4, 4, &[2]);
    net.remove(2, &g, &[0]);
    let r = net.take_in_flight();
    net.make_admin(0, &g, &[1]);
    net.run_only(&[1, 3]);
    net.remove(1, &g, &[3]);
    net.run_only(&[3]);
    net.add(1, g.clone(), &[3]);
    net.run_only(&[3]);
    assert!(net.has_group(3, &g), "device 3 was re-added on G's branch");
    net.put_in_flight(r);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    // Device 3 is a member on R's branch: the admin there re-adds it when it asks.
    net.assert_converged(&g, &[1, 2, 3]);
}
