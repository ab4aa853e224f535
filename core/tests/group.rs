//! The group engine over an in-memory network of devices, each with its own SQLite file,
//! delivering frames in chosen orders: in order, reversed, duplicated, delayed.
#[path = "group/network.rs"]
mod network;

#[path = "group/leaving.rs"]
mod leaving;

#[path = "group/deep_forks.rs"]
mod deep_forks;

#[path = "group/branch_lost.rs"]
mod branch_lost;

#[path = "group/welcomes.rs"]
mod welcomes;

#[path = "group/waiting_intents.rs"]
mod waiting_intents;

#[path = "group/own_commits.rs"]
mod own_commits;

#[path = "group/past_membership.rs"]
mod past_membership;

#[path = "group/crashes.rs"]
mod crashes;

#[path = "group/removed_notifier.rs"]
mod removed_notifier;

use kith_core::content::Content;
use kith_core::group::{encode_admins, Event, GroupError};
use kith_crypto::mls::openmls::prelude::{Extension, LeafNodeIndex, UnknownExtension};
use kith_crypto::mls::ADMINS_EXTENSION_TYPE;
use network::{Network, Order};

#[test]
fn create_add_send_in_order() {
    let mut net = Network::new(3);
    let g = net.create(0, "friends");
    net.add(0, g.clone(), &[1, 2]);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
    assert_eq!(net.name(1, &g), "friends");
    net.send_text(1, &g, "hello");
    net.send_text(2, &g, "hi");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["hello", "hi"]);
    // Members see the same list, with the addresses from the certificates.
    let members = net.members(2, &g);
    assert_eq!(members.len(), 3);
    assert_eq!(members, net.members(0, &g));
}

#[test]
fn reversed_and_duplicated_delivery_converges_and_shows_each_message_once() {
    for order in [
        Order::Reversed,
        Order::Duplicated,
        Order::Shuffled(7),
        Order::Shuffled(42),
    ] {
        let mut net = Network::new(4);
        let g = net.create(0, "team");
        net.add(0, g.clone(), &[1, 2, 3]);
        net.run(order);
        net.send_text(1, &g, "one");
        net.self_update(2, &g);
        net.send_text(3, &g, "two");
        net.send_text(0, &g, "three");
        net.run(order);
        net.self_update(1, &g);
        net.send_text(2, &g, "four");
        net.run(order);
        net.assert_converged(&g, &[0, 1, 2, 3]);
        net.assert_each_shown_once(&g, &[0, 1, 2, 3], &["one", "two", "three", "four"]);
    }
}

#[test]
fn message_for_a_future_epoch_is_stashed_and_shown_after_the_commit() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.self_update(0, &g);
    net.send_text(0, &g, "after the update");
    // Device 2 gets the message before the commit that makes its epoch: no key it holds
    // opens it, so it waits in the stash until the commit arrives.
    net.deliver_last_to(2);
    assert_eq!(net.stash_len(2), 1);
    assert!(net.shown(2, &g).is_empty());
    net.deliver_last_to(2);
    assert_eq!(
        net.stash_len(2),
        0,
        "the stash empties once the commit opened it"
    );
    assert_eq!(net.shown(2, &g), vec!["after the update".to_string()]);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["after the update"]);
}

#[test]
fn message_from_a_past_epoch_still_decrypts() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.send_text(1, &g, "sent before the update");
    let late = net.take_in_flight();
    net.self_update(0, &g);
    net.self_update(2, &g);
    net.run(Order::Sent);
    net.put_in_flight(late);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["sent before the update"]);
}

#[test]
fn removed_device_cannot_read_what_follows() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.remove(0, &g, &[2]);
    net.run(Order::Sent);
    assert!(net
        .events(2)
        .iter()
        .any(|e| matches!(e, Event::Removed { .. })));
    net.assert_converged(&g, &[0, 1]);
    assert_eq!(net.members(0, &g).len(), 2);
    net.send_text(0, &g, "secret");
    // Deliver a copy to the removed device too, as a relay might.
    net.copy_in_flight_to(2);
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1], &["secret"]);
    assert!(net.shown(2, &g).is_empty());
    assert!(!net.has_group(2, &g));
}

#[test]
fn leave_request_is_committed_by_a_member() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.leave(1, &g);
    net.run(Order::Sent);
    assert!(net
        .events(1)
        .iter()
        .any(|e| matches!(e, Event::Removed { .. })));
    net.assert_converged(&g, &[0, 2]);
    assert_eq!(net.members(2, &g).len(), 2);
    // Device 2 (rank 1) had planned the same removal later; it is moot by then.
    net.advance(3600);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 2]);
}

#[test]
fn rename_converges_to_the_latest() {
    let mut net = Network::new(3);
    let g = net.create(0, "old");
    net.add(0, g.clone(), &[1, 2]);
    net.run(Order::Sent);
    net.advance(10);
    net.rename(1, &g, "first");
    net.advance(10);
    net.rename(2, &g, "second");
    net.run(Order::Reversed);
    for d in 0..3 {
        assert_eq!(net.name(d, &g), "second");
    }
}

#[test]
fn a_forged_certificate_is_refused() {
    let mut net = Network::new(2);
    let g = net.create(0, "g");
    // Device 1's KeyPackage offered under someone else's identity.
    let stranger = network::other_identity();
    let result = net.try_add_as(0, &g, 1, stranger);
    assert!(matches!(result, Err(GroupError::CertificateMismatch(_))));
    // A KeyPackage whose certificate signature was tampered with.
    let (forged, identity) = net.forged_key_package();
    let result = net.try_add_package(0, &g, forged, identity);
    assert!(matches!(result, Err(GroupError::CertificateMismatch(_))));
    assert_eq!(net.members(0, &g).len(), 1);
}

#[test]
fn concurrent_commits_in_opposite_orders_end_on_one_chain() {
    let (mut net, g) = Network::with_group(4, &[]);
    // Two admins commit on the same parent epoch; device 1 also sends on its branch.
    net.self_update(0, &g);
    net.self_update(1, &g);
    net.send_text(1, &g, "on a branch that may lose");
    // Devices 2 and 3 get the two commits in opposite orders.
    net.run_with_orders(&[(2, Order::Sent), (3, Order::Reversed)]);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2, 3]);
    net.assert_each_shown_once(&g, &[0, 2, 3], &["on a branch that may lose"]);
    assert!(net
        .all_events()
        .iter()
        .any(|e| matches!(e, Event::ForkResolved { .. })));
}

#[test]
fn removal_beats_a_concurrent_self_update_and_the_update_is_reissued() {
    for order in [Order::Sent, Order::Reversed] {
        let mut net = Network::new(4);
        let g = net.create(0, "g");
        net.add(0, g.clone(), &[1, 2, 3]);
        net.run(Order::Sent);
        let (start, _) = net.epoch(0, &g);
        net.self_update(1, &g);
        net.remove(0, &g, &[3]);
        net.run(order);
        net.assert_converged(&g, &[0, 1, 2]);
        assert_eq!(net.members(2, &g).len(), 3);
        // The removal won the parent epoch; device 1 re-issued its self-update on top.
        let (end, _) = net.epoch(2, &g);
        assert_eq!(end, start + 2, "removal, then the re-issued self-update");
    }
}

#[test]
fn a_device_behind_gets_the_commits_it_missed() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.self_update(0, &g);
    // Device 2 never receives that commit from the relay.
    net.drop_in_flight_to(2);
    net.run(Order::Sent);
    assert_ne!(net.epoch(2, &g), net.epoch(0, &g));
    // It speaks from its old epoch; device 0 answers with the missing commits.
    net.send_text(2, &g, "am I behind?");
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
    net.assert_each_shown_once(&g, &[0, 1], &["am I behind?"]);
}

#[test]
fn content_kinds_round_trip_through_the_group() {
    let (mut net, g) = Network::with_group(2, &[]);
    let id = net.send(
        0,
        &g,
        Content::Text {
            body: "x".into(),
            reply_to: None,
        },
    );
    net.send(
        1,
        &g,
        Content::Reaction {
            target: id,
            emoji: "+1".into(),
            is_removal: false,
        },
    );
    net.send(
        0,
        &g,
        Content::Edit {
            target: id,
            body: "y".into(),
        },
    );
    net.send(0, &g, Content::Delete { target: id });
    net.run(Order::Duplicated);
    let kinds: Vec<Content> = net.shown_contents(1, &g);
    assert_eq!(kinds.len(), 3);
    assert!(matches!(kinds[0], Content::Text { .. }));
    assert!(matches!(kinds[1], Content::Edit { .. }));
    assert!(matches!(kinds[2], Content::Delete { .. }));
    assert!(matches!(
        net.shown_contents(0, &g)[0],
        Content::Reaction { .. }
    ));
}

#[test]
fn an_add_that_loses_to_a_concurrent_removal_is_reissued_and_the_new_device_joins() {
    for order in [Order::Sent, Order::Reversed] {
        let mut net = Network::new(5);
        let g = net.create(0, "g");
        net.add(0, g.clone(), &[1, 2, 3]);
        net.run(Order::Sent);
        net.make_admin(0, &g, &[1]);
        net.run(Order::Sent);
        net.add(0, g.clone(), &[4]);
        net.remove(1, &g, &[3]);
        net.run(order);
        net.assert_converged(&g, &[0, 1, 2, 4]);
        net.send_text(4, &g, "the newcomer speaks");
        net.run(order);
        net.assert_each_shown_once(&g, &[0, 1, 2, 4], &["the newcomer speaks"]);
    }
}

/// Random schedules: several devices send, self-update and remove concurrently, and the
/// network delivers each round in a seeded random order with some frames duplicated.
#[test]
fn random_schedules_converge() {
    for seed in [1u64, 2, 3] {
        let mut net = Network::new(5);
        let g = net.create(0, "sim");
        net.add(0, g.clone(), &[1, 2, 3, 4]);
        net.run(Order::Sent);
        let mut texts = Vec::new();
        for round in 0..4u64 {
            let x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(round * 1442695040888963407);
            let updater = (x % 4) as usize;
            let other = ((x >> 8) % 4) as usize;
            net.self_update(updater, &g);
            if other != updater {
                net.self_update(other, &g);
            }
            let text = format!("seed {seed} round {round}");
            net.send_text(((x >> 16) % 4) as usize, &g, &text);
            texts.push(text);
            net.duplicate_some(seed + round);
            net.run(Order::Shuffled(seed * 100 + round));
        }
        net.remove(0, &g, &[4]);
        net.self_update(2, &g);
        net.run(Order::Shuffled(seed));
        net.assert_converged(&g, &[0, 1, 2, 3]);
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        net.assert_each_shown_once(&g, &[0, 1, 2, 3], &texts);
    }
}

#[test]
fn a_used_key_package_is_deleted_once_the_group_is_past_the_horizon() {
    let (mut net, g) = Network::with_group(2, &[]);
    assert_eq!(
        net.stored_key_packages(1),
        1,
        "kept while a re-issued add may need it"
    );
    for _ in 0..=kith_core::group::HORIZON {
        net.self_update(0, &g);
        net.run(Order::Sent);
    }
    net.assert_converged(&g, &[0, 1]);
    assert_eq!(net.stored_key_packages(1), 0);
}

#[test]
fn a_two_epoch_branch_is_rolled_back_when_the_better_commit_arrives_late() {
    let (mut net, g) = Network::with_group(4, &[1]);
    let (start, _) = net.epoch(0, &g);
    // On the same parent: device 0 updates, device 1 removes device 3 (removal wins).
    net.self_update(0, &g);
    let update = net.take_in_flight();
    net.remove(1, &g, &[3]);
    let removal = net.take_in_flight();
    // Everyone but device 1 follows the update, and device 0 builds a second commit on it.
    net.put_in_flight(update);
    net.run(Order::Sent);
    net.self_update(0, &g);
    net.send_text(2, &g, "said on the losing branch");
    net.run(Order::Sent);
    assert_eq!(net.epoch(2, &g).0, start + 2);
    // The removal arrives late: devices 0 and 2 roll back two epochs and apply it.
    net.put_in_flight(removal);
    net.run(Order::Reversed);
    net.assert_converged(&g, &[0, 1, 2]);
    assert!(net
        .events(3)
        .iter()
        .any(|e| matches!(e, Event::Removed { .. })));
    // Device 0's two self-updates were re-issued on top of the removal.
    assert_eq!(net.epoch(1, &g).0, start + 3);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["said on the losing branch"]);
}

#[test]
fn only_admins_change_membership_and_a_new_admin_can_add_at_once() {
    let mut net = Network::new(4);
    let g = net.create(0, "g");
    net.add(0, g.clone(), &[1, 2]);
    net.run(Order::Sent);
    assert_eq!(net.admins(1, &g), vec![0], "the creator is the only admin");
    // A non-admin's add and remove fail locally with a clear error.
    let err = net
        .try_add_as(1, &g, 3, net_identity(&net, 3))
        .expect_err("non-admin add");
    assert!(matches!(err, GroupError::NotAdmin), "{err:?}");
    let err = net.try_remove(1, &g, &[2]).expect_err("non-admin remove");
    assert!(matches!(err, GroupError::NotAdmin), "{err:?}");
    let err = net
        .try_make_admin(2, &g, &[2])
        .expect_err("non-admin grant");
    assert!(matches!(err, GroupError::NotAdmin), "{err:?}");
    // The creator makes device 1 an admin; device 1 adds device 3 as soon as it has the
    // grant. Device 2 gets the add before the grant: the add waits for the grant's epoch,
    // and device 3 learns the admins from its Welcome.
    net.make_admin(0, &g, &[1]);
    net.deliver_last_to(1);
    net.add(1, g.clone(), &[3]);
    net.run(Order::Reversed);
    net.assert_converged(&g, &[0, 1, 2, 3]);
    for i in 0..4 {
        assert_eq!(
            net.admins(i, &g),
            vec![0, 1],
            "device {i} knows both admins"
        );
    }
    net.send_text(3, &g, "joined via a new admin");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 2, 3], &["joined via a new admin"]);
}

#[test]
fn a_membership_commit_from_a_non_admin_is_refused_by_receivers() {
    let mut net = Network::new(4);
    let g = net.create(0, "g");
    net.add(0, g.clone(), &[1, 2]);
    net.run(Order::Sent);
    let before = net.epoch(0, &g);
    // Device 2 is no admin, builds a commit removing device 1 behind its engine's back.
    let leaf = net.members(0, &g)[1].leaf_index;
    net.rogue_commit(2, &g, |group, provider, signer| {
        let (commit, _, _) = group
            .remove_members(provider, signer, &[LeafNodeIndex::new(leaf)])
            .expect("remove commit");
        commit
    });
    net.run(Order::Sent);
    assert_eq!(
        net.epoch(0, &g),
        before,
        "device 0 did not merge the commit"
    );
    assert_eq!(
        net.epoch(1, &g),
        before,
        "device 1 did not merge the commit"
    );
    assert!(net.has_group(1, &g), "device 1 is still a member");
    assert_eq!(net.members(0, &g).len(), 3);
    assert!(net.errors(0).is_empty() && net.errors(1).is_empty());
}

/// The admin list may only grow, by member devices, and only an admin may grow it; a
/// commit that changes the context any other way is refused by every receiver.
#[test]
fn context_changes_other_than_granting_members_are_refused() {
    let (mut net, g) = Network::with_outsiders(4, 3, &[1]);
    assert_eq!(net.admins(2, &g), vec![0, 1]);
    let addresses: Vec<String> = net.members(0, &g).into_iter().map(|m| m.address).collect();
    let outsider = "d3@relay.example".to_owned();
    let attempts: Vec<(usize, Vec<String>)> = vec![
        // A non-admin makes itself an admin.
        (
            2,
            vec![
                addresses[0].clone(),
                addresses[1].clone(),
                addresses[2].clone(),
            ],
        ),
        // An admin demotes the other admin.
        (1, vec![addresses[1].clone()]),
        // An admin makes a device that is not a member an admin.
        (
            0,
            vec![addresses[0].clone(), addresses[1].clone(), outsider],
        ),
    ];
    let before = net.epoch(0, &g);
    for (committer, admins) in attempts {
        net.rogue_commit(committer, &g, |group, provider, signer| {
            let mut extensions = group.extensions().clone();
            extensions
                .add_or_replace(Extension::Unknown(
                    ADMINS_EXTENSION_TYPE,
                    UnknownExtension(encode_admins(&admins)),
                ))
                .expect("extension");
            let (commit, _, _) = group
                .update_group_context_extensions(provider, extensions, signer)
                .expect("context commit");
            commit
        });
        net.run(Order::Sent);
        for i in 0..3 {
            assert_eq!(net.epoch(i, &g), before, "device {i} refused the commit");
            assert_eq!(
                net.admins(i, &g),
                vec![0, 1],
                "device {i}: admins unchanged"
            );
        }
    }
}

/// Two admins grant on the same parent: fork choice keeps one grant, the other admin's
/// grant is re-issued on top of it, and every device ends with both grantees as admins.
#[test]
fn concurrent_grants_both_take_effect() {
    for order in [Order::Sent, Order::Reversed] {
        let mut net = Network::new(4);
        let g = net.create(0, "g");
        net.add(0, g.clone(), &[1, 2, 3]);
        net.run(Order::Sent);
        net.make_admin(0, &g, &[1]);
        net.run(Order::Sent);
        net.make_admin(0, &g, &[2]);
        net.make_admin(1, &g, &[3]);
        net.run(order);
        net.run(Order::Sent);
        net.assert_converged(&g, &[0, 1, 2, 3]);
        for i in 0..4 {
            assert_eq!(net.admins(i, &g), vec![0, 1, 2, 3], "device {i}, {order:?}");
        }
    }
}

#[test]
fn a_non_admin_can_leave_and_an_admin_commits_it() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.leave(2, &g);
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    assert!(!net.has_group(2, &g));
    net.assert_converged(&g, &[0, 1]);
}

#[test]
fn a_fork_deeper_than_the_horizon_is_repaired_by_re_adding_the_losing_device() {
    let (mut net, g) = Network::with_group(4, &[]);
    // Device 3 is cut off and commits more than H self-updates on its own branch.
    for _ in 0..=kith_core::group::HORIZON {
        net.self_update(3, &g);
    }
    let held = net.take_in_flight();
    // Meanwhile the admin removes device 2: a removal beats self-updates.
    net.remove(0, &g, &[2]);
    net.run(Order::Sent);
    assert!(
        net.events(3)
            .iter()
            .any(|e| matches!(e, Event::RejoinRequested { .. })),
        "device 3 found itself on the losing branch beyond the horizon"
    );
    // Its stale commits arrive late and change nothing.
    net.put_in_flight(held);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 3]);
    net.send_text(3, &g, "back");
    net.send_text(1, &g, "welcome back");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 3], &["back", "welcome back"]);
}

fn net_identity(net: &Network, i: usize) -> kith_crypto::identity::IdentityPublicKey {
    net.identity(i)
}

/// Found by the simulator (seed 3 and others): a device that merged a commit removing it
/// deleted the group at once, so when a concurrent commit won fork choice — here one that
/// removes the remover, whose removal of device 2 then dies with it — device 2 was gone
/// from a group whose members still counted it. Now the removal is tentative.
#[test]
fn a_removal_that_loses_fork_choice_does_not_drop_the_device() {
    let (mut net, g) = Network::with_group(4, &[1]);
    net.remove(0, &g, &[2]);
    net.remove(1, &g, &[0]);
    // Device 2 gets its own removal first, then the competing commit.
    net.run(Order::Sent);
    net.advance(kith_core::group::LEAVE_STEP_SECS * 4);
    net.run(Order::Sent);
    let holders: Vec<usize> = (0..4).filter(|&i| net.has_group(i, &g)).collect();
    assert!(
        !holders.contains(&0),
        "device 0's removal is re-issued if it lost"
    );
    net.assert_converged(&g, &holders);
    let kept = holders.contains(&2);
    let won_by_removing_0 = net
        .events(2)
        .iter()
        .any(|e| matches!(e, Event::ForkResolved { .. }));
    assert!(
        kept || !won_by_removing_0,
        "device 2 rolled back its removal yet left the group"
    );
}

/// Found by the simulator (seed 3): a duplicated Welcome delivered late rolled an
/// up-to-date device back to the epoch it joined at.
#[test]
fn a_late_duplicate_welcome_does_not_roll_a_device_back() {
    let mut net = Network::new(3);
    let g = net.create(0, "g");
    net.add(0, g.clone(), &[1]);
    let welcome = net.take_in_flight();
    net.put_in_flight(welcome.clone());
    net.run(Order::Sent);
    net.self_update(0, &g);
    net.add(0, g.clone(), &[2]);
    net.run(Order::Sent);
    net.put_in_flight(welcome);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
    net.send_text(1, &g, "still here");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 2], &["still here"]);
}

/// Two admins add a device each on one parent, and each then removes device 2 on its own
/// branch; fork choice keeps one add, and the other adder re-adds its device on the
/// winning chain. The device added by the losing commit holds a removal (class 0) on its
/// dead branch where the Welcome's chain holds only the re-add (class 1): only the hash of
/// the commit that added it (`JoinHash`) shows that the Welcome's chain wins earlier, on
/// the parent of the two adds (simulator seed 129).
#[test]
fn a_device_added_by_a_losing_commit_takes_the_welcome_that_re_adds_it() {
    let (mut net, g) = Network::with_outsiders(5, 3, &[1]);
    net.add(0, g.clone(), &[3]);
    net.add(1, g.clone(), &[4]);
    let newcomers = |frames: Vec<(usize, network::Envelope)>| -> (Vec<_>, Vec<_>) {
        frames.into_iter().partition(|(to, _)| *to == 3 || *to == 4)
    };
    // Each newcomer gets only what its adder sent it; then each adder removes device 2 on
    // its own branch, and again only the newcomers get that.
    let (first, mut held) = newcomers(net.take_in_flight());
    net.put_in_flight(first);
    net.run(Order::Sent);
    held.extend(net.take_in_flight());
    net.remove(0, &g, &[2]);
    net.remove(1, &g, &[2]);
    let (second, rest) = newcomers(net.take_in_flight());
    held.extend(rest);
    net.put_in_flight(second);
    net.run(Order::Sent);
    net.put_in_flight(held);
    net.run(Order::Sent);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 3, 4]);
    net.send_text(3, &g, "three is in");
    net.send_text(4, &g, "four is in");
    net.run(Order::Sent);
    net.assert_each_shown_once(&g, &[0, 1, 3, 4], &["three is in", "four is in"]);
}
