//! A crash at any point of an incoming frame's handling leaves the device's database as it
//! was (simulator seed 6174): each frame is applied wholly or not at all.
use super::network::{Network, Order};

/// Seed 6174: device 1's self-update waits in flight while device 0's commit arrives and
/// moves device 1 on, so device 1 issues its self-update again on the new epoch. A write
/// interrupted inside openmls's commit builder rolled the transaction back; the engine took
/// the error for an intent that cannot be committed and deleted the intent, outside any
/// transaction, so the crash lost it.
#[test]
fn a_crash_while_an_intent_is_issued_again_loses_nothing() {
    let (mut net, g) = Network::with_group(3, &[]);
    net.self_update(1, &g);
    let held = net.take_in_flight();
    net.self_update(0, &g);
    let from_0 = net.take_in_flight();
    let (to_1, rest): (Vec<_>, Vec<_>) = from_0.into_iter().partition(|(to, _)| *to == 1);
    let commit = to_1
        .into_iter()
        .next()
        .expect("device 0's commit to device 1")
        .1;
    let tries = net.deliver_interrupted_everywhere(1, commit);
    assert!(tries > 10, "only {tries} interrupted tries");
    net.put_in_flight(rest);
    net.put_in_flight(held);
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
}

/// An application message and a Welcome, each interrupted at every point.
#[test]
fn a_crash_while_a_message_or_welcome_is_received_loses_nothing() {
    let (mut net, g) = Network::with_outsiders(3, 2, &[]);
    net.send_text(0, &g, "hello");
    let (to_1, _): (Vec<_>, Vec<_>) = net
        .take_in_flight()
        .into_iter()
        .partition(|(to, _)| *to == 1);
    let message = to_1.into_iter().next().expect("the message to device 1").1;
    assert!(net.deliver_interrupted_everywhere(1, message) > 10);
    assert_eq!(net.shown(1, &g), vec!["hello".to_string()]);
    net.add(0, g.clone(), &[2]);
    let (to_2, rest): (Vec<_>, Vec<_>) = net
        .take_in_flight()
        .into_iter()
        .partition(|(to, _)| *to == 2);
    net.put_in_flight(rest);
    net.run(Order::Sent);
    for (_, frame) in to_2 {
        net.deliver_interrupted_everywhere(2, frame);
    }
    net.run(Order::Sent);
    net.assert_converged(&g, &[0, 1, 2]);
}
