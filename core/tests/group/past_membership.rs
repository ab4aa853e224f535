//! Past memberships: a device removed and re-added reads what was sent while it was first
//! a member, whichever of its two Welcomes reaches it first (simulator seed 9857).
use kith_core::group::GroupId;

use super::network::{Envelope, Network, Order};

/// Frames in flight, each with the index of the device it goes to.
type Frames = Vec<(usize, Envelope)>;

/// Device 2 is added, sent a message, removed, sent another and re-added by device 0; the
/// other devices get everything at once. Returns what reached device 2 in each of the
/// three stages: the first add, the message of its first membership, and the removal
/// with the message sent while removed and the re-add.
fn removed_and_re_added() -> (Network, GroupId, [Frames; 3]) {
    let (mut net, g) = Network::with_outsiders(3, 2, &[]);
    let stage = |net: &mut Network, act: &dyn Fn(&mut Network)| -> Frames {
        act(net);
        let (to_2, rest): (Frames, Frames) = net
            .take_in_flight()
            .into_iter()
            .partition(|(to, _)| *to == 2);
        net.put_in_flight(rest);
        net.run(Order::Sent);
        to_2
    };
    let first_join = stage(&mut net, &|net| net.add(0, g.clone(), &[2]));
    let message = stage(&mut net, &|net| {
        net.send_text(1, &g, "while first a member")
    });
    let second_join = stage(&mut net, &|net| {
        net.remove(0, &g, &[2]);
        net.run(Order::Sent);
        net.send_text(1, &g, "while removed");
        net.run(Order::Sent);
        net.add(0, g.clone(), &[2]);
    });
    (net, g, [first_join, message, second_join])
}

/// Delivers each stage's frames to device 2 in turn, then everything to everyone.
fn deliver_to_2_in_turn(net: &mut Network, stages: [Frames; 3]) {
    for frames in stages {
        net.put_in_flight(frames);
        net.run_only(&[2]);
    }
    net.run(Order::Sent);
}

#[test]
fn a_device_whose_re_adding_welcome_came_first_reads_what_was_sent_while_it_was_first_a_member() {
    let (mut net, g, [first_join, message, second_join]) = removed_and_re_added();
    deliver_to_2_in_turn(&mut net, [second_join, first_join, message]);
    net.assert_converged(&g, &[0, 1, 2]);
    assert_eq!(net.shown(2, &g), ["while first a member"]);
    net.send_text(1, &g, "now");
    net.run(Order::Sent);
    assert_eq!(net.shown(2, &g), ["while first a member", "now"]);
}

#[test]
fn a_device_re_added_before_the_message_of_its_first_membership_came_reads_it() {
    let (mut net, g, [first_join, message, second_join]) = removed_and_re_added();
    deliver_to_2_in_turn(&mut net, [first_join, second_join, message]);
    net.assert_converged(&g, &[0, 1, 2]);
    assert_eq!(net.shown(2, &g), ["while first a member"]);
}

#[test]
fn a_message_of_the_first_membership_that_came_before_both_welcomes_is_read_from_the_stash() {
    let (mut net, g, [first_join, message, second_join]) = removed_and_re_added();
    deliver_to_2_in_turn(&mut net, [message, second_join, first_join]);
    net.assert_converged(&g, &[0, 1, 2]);
    assert_eq!(net.shown(2, &g), ["while first a member"]);
    assert_eq!(net.stash_len(2), 0, "nothing is left in the stash");
}
