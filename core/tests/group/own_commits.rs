//! A device's own commit, abandoned by a rollback, that the group later keeps (seed 9126).
use kith_core::group::{Event, HORIZON};

use super::network::{only, Network, Order};

/// On parent q admin 0 self-updates (a0) and goes on (X on p = q + 1, then H − 1 more);
/// admin 3, on a0, grants device 2 admin (C on p, class 1: it beats X), then takes admin
/// 1's grant on q (R, class 1: it beats a0) and rolls back past its own C. Admin 0, deep,
/// answers R with a fork notice, and admin 3 follows it — over X, which its own C beats.
/// Everyone else, seeing C later within the horizon, keeps C; admin 3 cannot follow its
/// own commit and used to stay alone on X's branch. Merging X now tells it that its
/// branch is lost, and it asks to be re-added.
#[test]
fn a_device_that_merges_a_commit_its_own_abandoned_commit_beats_asks_to_be_re_added() {
    let (mut net, g) = Network::with_group(4, &[1, 3]);
    net.self_update(0, &g);
    let a0 = net.take_in_flight();
    net.put_in_flight(only(a0.clone(), &[3]));
    net.run_only(&[3]);
    let a0_held = only(a0, &[1, 2]);
    net.make_admin(1, &g, &[2]);
    let r = net.take_in_flight();
    net.self_update(0, &g);
    let x = net.take_in_flight();
    net.make_admin(3, &g, &[2]);
    let c = net.take_in_flight();
    // R reaches admin 3 first: it wins on q, and C is left behind.
    net.put_in_flight(only(r.clone(), &[3]));
    net.run_only(&[3]);
    for _ in 1..HORIZON {
        net.self_update(0, &g);
    }
    let deep = net.take_in_flight();
    // R reaches admin 0 beyond its horizon: its notice takes admin 3 back over X.
    net.put_in_flight(only(r.clone(), &[0]));
    net.run_only(&[0, 3]);
    assert!(
        net.events(3)
            .iter()
            .any(|e| matches!(e, Event::RejoinRequested { .. })),
        "admin 3 asked to be re-added"
    );
    for frames in [a0_held, x, deep, c, only(r, &[2])] {
        net.put_in_flight(frames);
    }
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2, 3]);
}
