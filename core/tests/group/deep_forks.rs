//! Forks deeper than the rollback horizon, settled by fork notices (simulator seed 51).
use kith_core::group::{Event, GroupId, HORIZON};

use super::network::{only, Envelope, Network, Order};

/// A group of `n` with admins 0 and 1, where device 1 grants device 2 admin (class 1) cut
/// off from everyone: returns the grant's frames, held back.
fn grant_held_back(n: usize) -> (Network, GroupId, Vec<(usize, Envelope)>) {
    let mut net = Network::new(n);
    let g = net.create(0, "g");
    net.add(0, g.clone(), &(1..n).collect::<Vec<_>>());
    net.run(Order::Sent);
    net.make_admin(0, &g, &[1]);
    net.run(Order::Sent);
    net.make_admin(1, &g, &[2]);
    let grant = net.take_in_flight();
    (net, g, grant)
}

/// Delivers the held frames that go to device 0 (only it learns of device 1's branch).
fn deliver_to_admin(net: &mut Network, held: Vec<(usize, Envelope)>) {
    net.put_in_flight(held.into_iter().filter(|(to, _)| *to == 0).collect());
    net.run(Order::Sent);
}

/// Seed 51: the only active admin removed a member and went on for more than H epochs,
/// while the member sat on a branch whose commit wins fork choice at the fork. The admin
/// cannot roll back and sends a fork notice, but it used to send it only to its current
/// members — not to the member it had removed, which stayed on its dead branch for good.
/// Now the notice also reaches those who were members at the fork, and carries the
/// admin's commits from there on: the member rolls back, follows them, and sees its
/// removal.
#[test]
fn a_member_removed_on_an_admins_deep_branch_follows_the_fork_notice_to_its_removal() {
    // The admin self-updates on the grant's parent (class 2, so device 1's commit wins
    // there), removes device 1 and goes deep.
    let (mut net, g, grant) = grant_held_back(4);
    net.self_update(0, &g);
    net.remove(0, &g, &[1]);
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    assert!(
        net.has_group(1, &g),
        "device 1 keeps its branch: its commit wins at the fork"
    );
    // The grant reaches the admin only now, beyond its horizon.
    deliver_to_admin(&mut net, grant);
    assert!(
        net.events(1)
            .iter()
            .any(|e| matches!(e, Event::Removed { .. })),
        "device 1 followed the admin's branch to its removal"
    );
    assert!(
        !net.events(1)
            .iter()
            .any(|e| matches!(e, Event::RejoinRequested { .. })),
        "a device that can follow the notice does not ask to be re-added"
    );
    net.assert_converged(&g, &[0, 2, 3]);
    net.send_text(2, &g, "after");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 2, 3], &["after"]);
}

/// Seed 8639: the same fork, but the admin re-adds device 1 on its branch after removing
/// it. Device 1, on the branch that fork choice prefers, finds that Welcome no better and
/// ignores it; then the admin's notice takes it to the admin's branch, to its removal
/// there — and the Welcome that re-adds it was gone, while the group counted it. A
/// Welcome that was no better is now kept and judged again after a fork.
#[test]
fn a_welcome_ignored_on_the_preferred_branch_is_taken_after_a_notice_moves_us() {
    let (mut net, g, grant) = grant_held_back(4);
    net.self_update(0, &g);
    net.remove(0, &g, &[1]);
    net.add(0, g.clone(), &[1]);
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    let joins = |net: &Network| {
        net.events(1)
            .iter()
            .filter(|e| matches!(e, Event::Joined { .. }))
            .count()
    };
    let before = joins(&net);
    deliver_to_admin(&mut net, grant);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert_eq!(joins(&net), before + 1, "device 1 took the kept Welcome");
    net.assert_converged(&g, &[0, 1, 2, 3]);
}

/// Seed 8644: devices that a commit on the branch fork choice prefers (tentatively)
/// removed ignored the admin's fork notice, and waited out their removal while the
/// admin's branch, which the group kept, still counted them. A notice is now followed
/// while tentatively removed too.
#[test]
fn tentatively_removed_devices_follow_an_admins_notice_back_into_the_group() {
    let (mut net, g) = Network::with_group(4, &[1]);
    let not_to_0 =
        |frames: Held| -> Held { frames.into_iter().filter(|(to, _)| *to != 0).collect() };
    // On parent p admin 1 removes device 3 (class 0), then device 2; admin 0 hears of
    // neither.
    net.remove(1, &g, &[3]);
    let r = net.take_in_flight();
    net.put_in_flight(not_to_0(r.clone()));
    net.run(Order::Sent);
    net.remove(1, &g, &[2]);
    let second = net.take_in_flight();
    net.put_in_flight(not_to_0(second));
    net.run(Order::Sent);
    assert!(!net.has_group(2, &g) && !net.has_group(3, &g));
    // Admin 0 self-updates on p (class 2: it loses there), removes admin 1 and goes deep.
    net.self_update(0, &g);
    net.remove(0, &g, &[1]);
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    // Admin 1's first removal reaches admin 0 beyond its horizon: its notice brings the
    // removed devices back to its branch.
    net.put_in_flight(r.into_iter().filter(|(to, _)| *to == 0).collect());
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 2, 3]);
    assert!(!net.has_group(1, &g));
}

/// The same fork without the removal: the member on the shallow branch follows the
/// admin's commits from the notice and stays a member, without asking to be re-added; what
/// it did on its branch (a grant, a message) is redone once, after the whole chain.
#[test]
fn a_member_on_a_shallow_branch_follows_the_admins_deep_branch_without_a_re_add() {
    let (mut net, g, grant) = grant_held_back(3);
    for _ in 0..=HORIZON + 1 {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    net.send_text(1, &g, "from the shallow branch");
    deliver_to_admin(&mut net, grant);
    for i in 0..3 {
        assert!(
            net.events(i)
                .iter()
                .all(|e| !matches!(e, Event::RejoinRequested { .. })),
            "device {i} asked to be re-added: {:?}",
            net.events(i)
        );
    }
    net.assert_converged(&g, &[0, 1, 2]);
    assert_eq!(
        net.admins(1, &g),
        vec![0, 1, 2],
        "device 1's grant is re-issued on the admin's branch"
    );
    net.send_text(1, &g, "back");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["from the shallow branch", "back"]);
}

/// Seed 373: the admin's deep branch starts with the member's *own* commit, which the
/// member rolled back for a better one. openmls cannot process a device's own commit, so
/// the member cannot follow the notice's chain, and the admin's branch had removed it, so
/// nobody answers a rejoin request. The notice lists the devices the notifier's branch no
/// longer counts; such a device drops the group.
#[test]
fn a_removed_member_that_cannot_follow_its_own_commit_drops_the_group() {
    let (mut net, g) = Network::with_group(4, &[2]);
    // Device 1's self-update does not reach device 2, whose removal of device 3 on the
    // same parent (class 0, it wins there) reaches only device 1.
    net.self_update(1, &g);
    let update = net.take_in_flight();
    net.put_in_flight(update.into_iter().filter(|(to, _)| *to != 2).collect());
    net.run(Order::Sent);
    net.remove(2, &g, &[3]);
    let removal = net.take_in_flight();
    net.put_in_flight(removal.iter().filter(|(to, _)| *to == 1).cloned().collect());
    net.run(Order::Sent);
    // The admin, on device 1's commit, removes device 1 and goes deep.
    net.remove(0, &g, &[1]);
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    assert!(net.has_group(1, &g));
    deliver_to_admin(&mut net, removal);
    assert!(
        !net.has_group(1, &g),
        "device 1 dropped the group the admin's branch removed it from"
    );
    // Device 2 followed the admin's branch and removed device 3 again there.
    net.assert_converged(&g, &[0, 2]);
    assert!(
        net.events(3)
            .iter()
            .any(|e| matches!(e, Event::Removed { .. })),
        "{:?}",
        net.events(3)
    );
}

/// Seed 6476: an admin that our branch removed went deep on its own branch. Its fork
/// notice is signed by a leaf that is not in our tree, so it used to be refused, and the
/// group stayed split. The notice now carries the notifier's certificate: a device on the
/// admin list is believed even when our branch dropped it.
#[test]
fn a_fork_notice_from_an_admin_our_branch_removed_is_believed() {
    let (mut net, g) = Network::with_group(3, &[1]);
    // Admin 1 removes admin 0, cut off from it; admin 0 goes deep on the same parent.
    net.remove(1, &g, &[0]);
    let removal = net.take_in_flight();
    net.put_in_flight(removal.iter().filter(|(to, _)| *to != 0).cloned().collect());
    net.run(Order::Sent);
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    // The removal reaches admin 0 beyond its horizon: it tells devices 1 and 2, which
    // follow its branch; there device 1 removes it again.
    deliver_to_admin(&mut net, removal);
    net.advance(1);
    net.run(Order::Sent);
    assert!(
        net.events(0)
            .iter()
            .any(|e| matches!(e, Event::Removed { .. })),
        "admin 0 learns its removal on its own branch"
    );
    net.assert_converged(&g, &[1, 2]);
    net.assert_one_branch_carries_messages(&g, &[1, 2], 2);
}

/// Seed 6476 (its last orphan): a notifier that is no admin of ours, made one on its
/// branch only after a commit that removes us. Following its chain we stop at our
/// removal, before the grant, so its claim could not be checked, and the device kept its
/// dead branch, counted by nobody. A removal in the chain passes the admin rules at its
/// parent, which shows an admin at work on that branch: the chain is now taken.
#[test]
fn a_notice_whose_chain_removes_us_before_the_notifier_is_an_admin_is_followed() {
    let (mut net, g) = Network::with_group(5, &[1]);
    // Y: admin 1 removes device 4 on parent p (class 0).
    net.remove(1, &g, &[4]);
    let y = net.take_in_flight();
    // X: admin 0 self-updates on p, removes device 3, makes device 2 an admin; device 2
    // follows and goes deep. Admin 0 then goes offline for good.
    net.self_update(0, &g);
    net.remove(0, &g, &[3]);
    net.make_admin(0, &g, &[2]);
    let x = net.take_in_flight();
    net.put_in_flight(only(x.clone(), &[2]));
    net.run(Order::Sent);
    for _ in 0..=HORIZON {
        net.self_update(2, &g);
    }
    let deep = net.take_in_flight();
    // Y reaches devices 3 and 4, then device 2 beyond its horizon: device 2 sends its
    // notice; devices 1 and 3, shallow, judge it.
    net.put_in_flight(only(y.clone(), &[3, 4]));
    net.run(Order::Sent);
    net.put_in_flight(only(y, &[2]));
    net.run(Order::Sent);
    net.put_in_flight(only(x, &[1, 3, 4]));
    net.put_in_flight(only(deep, &[1, 3, 4]));
    net.run(Order::Sent);
    assert!(
        !net.has_group(3, &g),
        "device 3 followed the chain to its removal"
    );
    assert_eq!(net.admins(1, &g), vec![0, 1, 2], "device 1 is on X");
}

/// Seed 8499: the group left admin 0's branch within its horizon for a better commit on
/// the fork's parent and went deep on that one; admin 0, deep on the old branch, sent its
/// notice — and the group, too deep to follow and holding the better commit, ignored it,
/// so admin 0 never learned it had lost. A refused notice is now answered with a notice
/// of our own, and admin 0 asks to be re-added.
#[test]
fn a_notice_refused_by_a_deeper_better_branch_is_answered_and_its_sender_re_joins() {
    let (mut net, g) = Network::with_group(3, &[1]);
    // On parent p device 2 self-updates (X); admin 1, unaware, grants device 2 (Y, class
    // 1: it beats X). Admins 0 and 1 see X; admin 0 goes deep on it, cut off.
    net.self_update(2, &g);
    let x = net.take_in_flight();
    net.make_admin(1, &g, &[2]);
    let y = net.take_in_flight();
    net.put_in_flight(x);
    net.run(Order::Sent);
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    let deep_x = net.take_in_flight();
    // Device 2 takes Y (rolling back X), and admin 1 goes deep on Y.
    net.put_in_flight(only(y.clone(), &[2]));
    net.run(Order::Sent);
    for _ in 0..=HORIZON {
        net.self_update(1, &g);
    }
    let deep_y = net.take_in_flight();
    net.put_in_flight(only(deep_y, &[2]));
    net.run(Order::Sent);
    // Y reaches admin 0 beyond its horizon; everything else follows.
    net.put_in_flight(only(y, &[0]));
    net.put_in_flight(deep_x);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert!(net
        .events(0)
        .iter()
        .any(|e| matches!(e, Event::RejoinRequested { .. })));
    net.assert_converged(&g, &[0, 1, 2]);
}

type Held = Vec<(usize, Envelope)>;

/// Two commits on one parent: admin 0 grants device 2 admin (X), admin 1 removes device 4
/// (Y, class 0: it wins fork choice there). X reaches only `x_to` (device 2 among them),
/// then device 2 removes admin 0 and goes more than H epochs deep on X, its commits held
/// back (so nobody on Y learns of the grant from admin 0); then Y reaches
/// `y_to`. Returns the held frames: Y's to the others, and device 2's chain.
fn deep_admin_by_grant(x_to: &[usize], y_to: &[usize]) -> (Network, GroupId, Held, Held) {
    let (mut net, g) = Network::with_group(5, &[1]);
    net.make_admin(0, &g, &[2]);
    let x = net.take_in_flight();
    net.remove(1, &g, &[4]);
    let y = net.take_in_flight();
    net.put_in_flight(x.into_iter().filter(|(to, _)| x_to.contains(to)).collect());
    net.run(Order::Sent);
    net.remove(2, &g, &[0]);
    for _ in 0..HORIZON {
        net.self_update(2, &g);
    }
    let chain = net.take_in_flight();
    let (now, held): (Vec<_>, Vec<_>) = y.into_iter().partition(|(to, _)| y_to.contains(to));
    net.put_in_flight(now);
    net.run(Order::Sent);
    (net, g, held, chain)
}

/// Seed 6476: device 2 became an admin on its branch only after the fork, and went deep
/// there without the admin that granted it. Its fork notice reached devices whose branch
/// (the better commit at the parent) does not count it as an admin, so they kept their
/// branch, and the group stayed split in two, each with an admin. A notifier that is not
/// an admin of ours is now followed if the chain it sends makes it one.
#[test]
fn a_notice_from_an_admin_made_after_the_fork_is_followed_when_its_chain_shows_it() {
    let (mut net, g, y, chain) = deep_admin_by_grant(&[2], &[1, 3]);
    assert_eq!(net.admins(3, &g), vec![0, 1], "device 3 is on Y");
    // Y reaches device 2 beyond its horizon: its notice goes out with its chain. Admin 0
    // hears of Y only once the chain has removed it.
    let (late, now): (Held, Held) = y.into_iter().partition(|(to, _)| *to == 0);
    net.put_in_flight(now);
    net.put_in_flight(chain);
    net.run(Order::Sent);
    net.put_in_flight(late);
    net.run(Order::Sent);
    net.advance(1);
    net.run(Order::Sent);
    net.assert_converged(&g, &[1, 2, 3]);
    assert!(
        !net.has_group(0, &g),
        "device 2's branch removed admin 0: {:?} {:?}",
        net.events(0),
        net.epoch(0, &g).0
    );
    assert_eq!(
        net.admins(3, &g),
        vec![0, 1, 2],
        "device 3 followed device 2's branch"
    );
    assert!(
        !net.members(3, &g)
            .iter()
            .any(|m| m.address.starts_with("d4@")),
        "admin 1's removal is redone on the branch it moved to"
    );
    net.assert_one_branch_carries_messages(&g, &[1, 2, 3], 3);
}

/// The same fork, with the notice first: device 3 held X when device 2's notice came, so
/// there was nothing to do — then Y arrived, won fork choice, and device 3 moved to a
/// branch its admins had left (seeds 6476, 1702). A notice from an admin of ours that
/// names the commit we hold now pins it: device 3 keeps X against the better Y, and its
/// Welcomes say so (`LineageEntry::pinned`).
#[test]
fn a_notice_from_an_admin_naming_our_commit_pins_it_against_a_better_one() {
    let (mut net, g, y, chain) = deep_admin_by_grant(&[2, 3], &[2]);
    assert_eq!(net.admins(3, &g), vec![0, 1, 2], "device 3 is on X");
    net.put_in_flight(y);
    net.put_in_flight(chain);
    net.run(Order::Sent);
    net.advance(1);
    net.run(Order::Sent);
    assert!(
        !net.events(3)
            .iter()
            .any(|e| matches!(e, Event::ForkResolved { .. })),
        "device 3 kept X: {:?}",
        net.events(3)
    );
    net.assert_converged(&g, &[1, 2, 3]);
    assert!(!net.has_group(0, &g), "device 2's branch removed admin 0");
    assert_eq!(net.admins(3, &g), vec![0, 1, 2]);
    net.assert_one_branch_carries_messages(&g, &[1, 2, 3], 3);
}

/// A notice that named our commit came from a device our state did not count as an
/// admin yet (its grant was still on the way), so it pinned nothing; then a better commit
/// moved us off that commit. The notice, kept while its parent is within reach, is judged
/// again after the fork, and its chain (which makes the notifier an admin) takes us back.
#[test]
fn a_kept_notice_is_judged_again_after_a_fork_moves_us_off_its_commit() {
    let (mut net, g) = Network::with_group(5, &[1]);
    // X: admin 0's self-update, seen by devices 2 and 3; Y: admin 1 removes device 4.
    net.self_update(0, &g);
    let x = net.take_in_flight();
    net.remove(1, &g, &[4]);
    let y = net.take_in_flight();
    net.put_in_flight(
        x.into_iter()
            .filter(|(to, _)| [2, 3].contains(to))
            .collect(),
    );
    net.run(Order::Sent);
    // On X, admin 0 grants device 2 admin (only device 2 hears of it), and device 2
    // removes admin 0 and goes deep.
    net.make_admin(0, &g, &[2]);
    let grant = net.take_in_flight();
    let (grant_to_2, grant_rest): (Vec<_>, Vec<_>) =
        grant.into_iter().partition(|(to, _)| *to == 2);
    net.put_in_flight(grant_to_2);
    net.run(Order::Sent);
    net.remove(2, &g, &[0]);
    for _ in 1..HORIZON {
        net.self_update(2, &g);
    }
    let chain = net.take_in_flight();
    // Y reaches device 2: its notice reaches device 3 while device 3 still holds X.
    let (y_to_3, y_rest): (Vec<_>, Vec<_>) = y.into_iter().partition(|(to, _)| *to == 3);
    net.put_in_flight(y_rest);
    net.run(Order::Sent);
    assert_eq!(
        net.admins(3, &g),
        vec![0, 1],
        "device 3 does not know the grant"
    );
    net.put_in_flight(y_to_3);
    net.run(Order::Sent);
    assert!(
        net.events(3)
            .iter()
            .any(|e| matches!(e, Event::ForkResolved { .. })),
        "Y moved device 3: {:?}",
        net.events(3)
    );
    net.put_in_flight(grant_rest);
    net.put_in_flight(chain);
    net.run(Order::Sent);
    net.advance(1);
    net.run(Order::Sent);
    net.assert_converged(&g, &[1, 2, 3]);
    assert_eq!(
        net.admins(3, &g),
        vec![0, 1, 2],
        "device 3 is back on device 2's branch"
    );
    net.assert_one_branch_carries_messages(&g, &[1, 2, 3], 3);
}

/// Seed 705: the admin's deep chain holds, past its first commit, a self-update that
/// device 1 made on that branch before fork choice took it elsewhere. openmls cannot
/// process a device's own commit, so following the notice stopped there, and device 1 sat
/// half-way along the chain on no branch at all. A chain that does not apply whole is now
/// not taken: device 1 asks to be re-added instead.
#[test]
fn a_chain_that_stops_at_our_own_commit_is_not_taken_and_we_ask_for_a_re_add() {
    let (mut net, g) = Network::with_group(4, &[2]);
    // X: admin 0's self-update, seen by device 1 only; Y: admin 2 removes device 3 on the
    // same parent (a removal: it wins there), held back.
    net.self_update(0, &g);
    let x = net.take_in_flight();
    net.remove(2, &g, &[3]);
    let y = net.take_in_flight();
    net.put_in_flight(x.into_iter().filter(|(to, _)| *to == 1).collect());
    net.run(Order::Sent);
    // Device 1 self-updates on X; only admin 0 gets it. Then Y moves device 1 over.
    net.self_update(1, &g);
    let own = net.take_in_flight();
    net.put_in_flight(own.into_iter().filter(|(to, _)| *to == 0).collect());
    net.run(Order::Sent);
    let (to_admin, rest): (Vec<_>, Vec<_>) = y.into_iter().partition(|(to, _)| *to == 0);
    net.put_in_flight(rest);
    net.run(Order::Sent);
    // Admin 0 goes deep on X, then meets Y: its notice carries X, device 1's commit, ...
    for _ in 0..HORIZON {
        net.self_update(0, &g);
    }
    net.run(Order::Sent);
    net.put_in_flight(to_admin);
    net.run(Order::Sent);
    let events = net.events(1);
    let moves = events
        .iter()
        .filter(|e| matches!(e, Event::ForkResolved { .. }))
        .count();
    assert_eq!(
        moves, 1,
        "only Y moved device 1, not the notice: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RejoinRequested { .. })),
        "device 1 asked to be re-added at once: {events:?}"
    );
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
    net.send_text(1, &g, "back");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["back"]);
}

/// Fresh seed 10081: a member went deep on a branch of its own (self-updates nobody got)
/// while the admin removed it on the same parent. Beyond the horizon it asks the admin to
/// re-add it; the admin does not count it and ignored the request, and the member stayed
/// alone on its branch. The request now names the first epoch of the requester's branch,
/// and an admin that holds another id for that epoch tells it that its branch is lost.
#[test]
fn a_member_removed_beyond_the_horizon_that_asks_to_rejoin_is_told_its_branch_is_lost() {
    let (mut net, g) = Network::with_group(3, &[]);
    for _ in 0..=HORIZON {
        net.self_update(2, &g);
    }
    let deep = net.take_in_flight();
    net.remove(0, &g, &[2]);
    net.run(Order::Sent);
    net.put_in_flight(deep);
    net.run(Order::Sent);
    assert!(
        net.events(2)
            .iter()
            .any(|e| matches!(e, Event::RejoinRequested { .. })),
        "device 2 asked to be re-added"
    );
    assert!(
        !net.has_group(2, &g),
        "device 2 was told its branch is lost and dropped the group"
    );
    net.assert_converged(&g, &[0, 1]);
}
