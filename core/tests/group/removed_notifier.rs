//! A device that its own branch removed does not speak for that branch (simulator seed
//! 13756).
use kith_core::group::{Event, HORIZON};

use super::network::{only, Network, Order};

/// Seed 13756: admin 1 went more than H epochs deep on a branch of its own, then a commit
/// that removes it beat its first commit there, so it rolled back and was (tentatively)
/// removed. A better commit then arrived for a parent below, which it could no longer
/// roll back to. As an admin it sent a fork notice, and a member within its horizon
/// followed it onto a branch that everyone else had left for the better commit. There it
/// stayed alone, counted by a group it could no longer read (here a deep admin's answering
/// notice happens to bring it back; in the seed no one could). A device its branch removed
/// now asks to be re-added, as a non-admin does, and the member never leaves the group's
/// branch.
#[test]
fn an_admin_removed_on_its_branch_sends_no_fork_notice_for_it() {
    let (mut net, g) = Network::with_group(4, &[1, 2]);
    // On parent p admin 0 makes device 3 an admin (X, class 1), held back from everyone.
    let p = net.epoch(0, &g).0;
    net.make_admin(0, &g, &[3]);
    let x = net.take_in_flight();
    // Device 2 self-updates on p (C, class 2): everyone takes it but admin 0, which keeps X.
    net.self_update(2, &g);
    net.run(Order::Sent);
    // Admin 1 goes H + 1 epochs deep on C, its commits held back: it keeps no snapshot of
    // p, only of p + 1 on.
    for _ in 0..HORIZON {
        net.self_update(1, &g);
    }
    let abandoned = net.take_in_flight();
    // Admin 2 removes admin 1 on p + 1 (R, class 0), heard by devices 1 and 3 only. Admin 1
    // rolls back to p + 1 for it and is removed there.
    net.remove(2, &g, &[1]);
    let r = net.take_in_flight();
    net.put_in_flight(only(r, &[1, 3]));
    net.run(Order::Sent);
    // X reaches devices 2 and 3 within their horizon: it beats C, so they roll back to p and
    // take it, and device 2 removes admin 1 again there.
    net.put_in_flight(only(x.clone(), &[2, 3]));
    net.run(Order::Sent);
    // Admin 0 goes more than H epochs deep on X with device 2; device 3 does not hear of it
    // yet, so it can still roll back to p.
    for _ in 0..=HORIZON {
        net.self_update(0, &g);
    }
    let deep = net.take_in_flight();
    let (to_3, others): (Vec<_>, Vec<_>) = deep.into_iter().partition(|(to, _)| *to == 3);
    net.put_in_flight(others);
    net.run(Order::Sent);
    // X reaches admin 1, which cannot roll back to p.
    net.put_in_flight(only(x, &[1]));
    net.run(Order::Sent);
    let forks_at_p = net
        .events(3)
        .iter()
        .filter(|e| matches!(e, Event::ForkResolved { parent_epoch, .. } if *parent_epoch == p))
        .count();
    assert_eq!(
        forks_at_p, 1,
        "device 3 resolved the fork at p once, for X, and was not pulled back onto C"
    );
    assert!(
        net.events(1)
            .iter()
            .any(|e| matches!(e, Event::RejoinRequested { .. })),
        "admin 1, removed on its branch, asks to be re-added: {:?}",
        net.events(1)
    );
    net.put_in_flight(to_3);
    net.put_in_flight(abandoned);
    net.run(Order::Sent);
    net.advance(kith_core::group::STASH_TTL + 1);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 2, 3]);
    assert!(
        !net.has_group(1, &g),
        "admin 1 is removed on the branch that won"
    );
    net.send_text(3, &g, "still here");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 2, 3], &["still here"]);
}
