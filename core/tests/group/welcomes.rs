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

/// Seed 9635: on one parent admin 0 adds device 3 and admin 1 adds device 4; each, not yet
/// knowing of the other's commit, then adds the other device on its own branch. Whichever
/// add wins fork choice, one device joins with the winner's Welcome (its join unhashed)
/// and then gets the loser's Welcome for a later epoch, whose chain names the loser's
/// commit on the parent of its join. It used to take that Welcome (the later epoch) and
/// stay on the dead branch, a member nobody could reach. It now waits for its join hash,
/// and fork choice at that parent decides.
#[test]
fn a_later_welcome_naming_another_commit_where_our_join_is_unhashed_waits_for_our_hash() {
    let (mut net, g) = Network::with_outsiders(5, 3, &[1]);
    net.add(0, g.clone(), &[3]);
    net.add(1, g.clone(), &[4]);
    net.add(0, g.clone(), &[4]);
    net.add(1, g.clone(), &[3]);
    let (outsiders, members): (Frames, Frames) = net
        .take_in_flight()
        .into_iter()
        .partition(|(to, _)| *to >= 3);
    net.put_in_flight(members);
    net.run_only(&[0, 1, 2]);
    let answers = net.take_in_flight();
    assert_eq!(net.epoch(0, &g), net.epoch(2, &g), "fork choice settled");
    assert_eq!(net.epoch(1, &g), net.epoch(2, &g), "fork choice settled");
    // Each outsider gets its first Welcome, then the later one, then both join hashes
    // (its own last), then the commit its first adder made after adding it; what they
    // send is held until the end (members would answer it with the commits they lack).
    let (mut hashes, rest): (Frames, Frames) = outsiders
        .into_iter()
        .partition(|(_, envelope)| envelope.is_control());
    let (welcomes, commits): (Frames, Frames) = rest
        .into_iter()
        .partition(|(_, envelope)| envelope.is_device_sealed());
    let mut welcomed = Vec::new();
    let (first, later): (Frames, Frames) = welcomes.into_iter().partition(|(to, _)| {
        let first = !welcomed.contains(to);
        welcomed.push(*to);
        first
    });
    hashes.reverse();
    for frames in [first, later, hashes, commits, answers] {
        net.put_in_flight(frames);
        net.run_only(&[3, 4]);
    }
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2, 3, 4]);
}

/// Seed 1932: device 2 is added, removed and re-added before any frame reaches it. It
/// joins with the first Welcome (its join unhashed), and the re-adding Welcome, whose
/// chain names another commit on that join's parent than the unknown one, waits for the
/// first join hash. The commit removing the device then arrives, and that join hash only
/// after it. The device, tentatively removed, no longer applied join hashes, so the
/// re-adding Welcome waited for ever while the members counted the device. Now a commit
/// that grows our chain while our join is unhashed has the waiting Welcomes judged again:
/// the re-adding one names the removal too, so the chains agree and its later epoch wins.
#[test]
fn a_device_removed_and_re_added_takes_the_re_adding_welcome_once_the_removal_comes() {
    let (mut net, g) = Network::with_outsiders(3, 2, &[]);
    net.add(0, g.clone(), &[2]);
    net.remove(0, &g, &[2]);
    net.add(0, g.clone(), &[2]);
    let (to_outsider, to_members): (Frames, Frames) = net
        .take_in_flight()
        .into_iter()
        .partition(|(to, _)| *to == 2);
    net.put_in_flight(to_members);
    net.run_only(&[0, 1]);
    let (mut hashes, rest): (Frames, Frames) = to_outsider
        .into_iter()
        .partition(|(_, envelope)| envelope.is_control());
    let (welcomes, epoch_frames): (Frames, Frames) = rest
        .into_iter()
        .partition(|(_, envelope)| envelope.is_device_sealed());
    assert_eq!(
        (welcomes.len(), hashes.len()),
        (2, 2),
        "two Welcomes, two join hashes"
    );
    let first_hash = hashes.remove(0);
    for frames in [welcomes, hashes, epoch_frames, vec![first_hash]] {
        net.put_in_flight(frames);
        net.run_only(&[2]);
    }
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
}

/// Seed 12737: admin 0 adds device 3 on a branch that then loses fork choice below the
/// add, rolls back and adds it again into the same epoch number on the winning branch.
/// Both join hashes name the same group, epoch and signer; the device used to fill in the
/// first one that came — the abandoned add's — so its chain named a commit the group never
/// had. Removed and re-added later, it compared the re-adding Welcome's chain with that
/// wrong hash and, when fork choice favoured the wrong one, ignored it for good. Each join
/// hash now names its epoch's transcript, and only the device's own is filled in. Whether
/// the wrong hash would win fork choice is a coin toss per run, so the scenario is run
/// four times (without the fix, all four pass one time in sixteen).
#[test]
fn a_device_added_twice_into_one_epoch_number_takes_the_join_hash_of_its_own_add() {
    for _ in 0..4 {
        let (mut net, g) = readded_after_a_rollback_below_the_add();
        net.remove(0, &g, &[3]);
        net.add(0, g.clone(), &[3]);
        net.run(Order::Sent);
        net.assert_converged(&g, &[0, 1, 2, 3]);
    }
}

/// Device 2 self-updates and admin 1, on the same parent, makes device 2 an admin (a
/// context change, which beats a self-update). Admin 0 merges the self-update first and
/// adds device 3 on it, then gets the grant, rolls back and adds device 3 again. Device 3
/// gets the abandoned add's join hash, then the kept add's Welcome and join hash.
fn readded_after_a_rollback_below_the_add() -> (Network, GroupId) {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1]);
    net.self_update(2, &g);
    let self_update = net.take_in_flight();
    net.make_admin(1, &g, &[2]);
    let grant = net.take_in_flight();
    net.put_in_flight(self_update);
    net.run_only(&[0]);
    net.add(0, g.clone(), &[3]);
    let (abandoned, rest): (Frames, Frames) = net
        .take_in_flight()
        .into_iter()
        .partition(|(to, _)| *to == 3);
    net.put_in_flight(rest);
    net.put_in_flight(grant);
    net.run_only(&[0]);
    assert!(rolled_back(&net, 0), "admin 0 rolled its add back");
    net.run_only(&[0, 1, 2]);
    let kept = net.take_in_flight();
    assert!(kept.iter().all(|(to, _)| *to == 3), "only device 3 waits");
    let split_hashes = |frames: Frames| -> (Frames, Frames) {
        frames
            .into_iter()
            .partition(|(_, envelope)| envelope.is_control())
    };
    let (abandoned_hash, _) = split_hashes(abandoned);
    let (kept_hash, kept_rest) = split_hashes(kept);
    assert_eq!((abandoned_hash.len(), kept_hash.len()), (1, 1));
    for frames in [abandoned_hash, kept_rest, kept_hash] {
        net.put_in_flight(frames);
        net.run_only(&[3]);
    }
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2, 3]);
    (net, g)
}
