//! The client end to end against a real kith-relay in process: three accounts, each with
//! its inbox and outbox running; A creates a group and adds B and C from their bundles;
//! messages reach every member exactly once; after C is removed it sees nothing new.
#[path = "support/devices.rs"]
mod devices;
#[path = "transport/harness.rs"]
#[allow(dead_code)]
mod harness;

use devices::{device, Device};
use harness::{account_dir, wait_for_event, Relay};
use kith_core::account::Account;
use kith_core::client::{Client, StoredMessage};
use kith_core::content::Content;
use kith_core::events::Event;
use kith_core::group::{self, GroupId};
use tokio_util::sync::CancellationToken;

fn texts(messages: &[StoredMessage]) -> Vec<(String, bool)> {
    messages
        .iter()
        .map(|m| match &m.content {
            Content::Text { body, .. } => (body.clone(), m.is_outgoing),
            other => panic!("unexpected content {other:?}"),
        })
        .collect()
}

async fn wait_for_message(device: &mut Device) {
    wait_for_event(&mut device.events, |e| {
        matches!(e, Event::MessageReceived { .. })
    })
    .await;
}

async fn wait_for_group_event(device: &mut Device, wanted: impl Fn(&group::Event) -> bool) {
    wait_for_event(
        &mut device.events,
        |e| matches!(e, Event::Group(g) if wanted(g)),
    )
    .await;
}

fn shown(device: &Device, group: &GroupId) -> Vec<(String, bool)> {
    texts(&device.client.messages(group).unwrap())
}

fn owned(items: &[(&str, bool)]) -> Vec<(String, bool)> {
    items.iter().map(|(t, o)| (t.to_string(), *o)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_talk_in_a_group_and_a_removed_one_sees_nothing_new() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let mut a = device(&relay, &dirs, "a", &stop).await;
    let mut b = device(&relay, &dirs, "b", &stop).await;
    let mut c = device(&relay, &dirs, "c", &stop).await;

    let group = a.client.create_group("friends").unwrap();
    // Nothing is due in a fresh group, and running the timers sends nothing new.
    a.client.handle_timeout().unwrap();
    a.client
        .add_member(&group, &b.client.bundle().unwrap())
        .unwrap();
    a.client
        .add_member(&group, &c.client.bundle().unwrap())
        .unwrap();
    let joined = |g: &group::Event| {
        *g == group::Event::Joined {
            group: group.clone(),
        }
    };
    wait_for_group_event(&mut b, joined).await;
    wait_for_group_event(&mut c, joined).await;
    assert_eq!(b.client.groups().unwrap(), vec![group.clone()]);
    assert_eq!(c.client.groups().unwrap(), vec![group.clone()]);

    a.client.send_text(&group, "hello from A").unwrap();
    wait_for_message(&mut b).await;
    wait_for_message(&mut c).await;
    assert_eq!(shown(&b, &group), owned(&[("hello from A", false)]));
    assert_eq!(shown(&c, &group), owned(&[("hello from A", false)]));

    b.client.send_text(&group, "hello from B").unwrap();
    wait_for_message(&mut a).await;
    wait_for_message(&mut c).await;
    assert_eq!(
        shown(&a, &group),
        owned(&[("hello from A", true), ("hello from B", false)])
    );
    assert_eq!(
        shown(&c, &group),
        owned(&[("hello from A", false), ("hello from B", false)])
    );

    let c_address = c.client.account().address().to_owned();
    a.client.remove_member(&group, &c_address).unwrap();
    wait_for_group_event(&mut b, |g| {
        matches!(g, group::Event::MembersRemoved { addresses, .. } if *addresses == [c_address.clone()])
    })
    .await;
    a.client.send_text(&group, "after C left").unwrap();
    wait_for_message(&mut b).await;
    // Everything addressed to C has been fetched and handled.
    relay.wait_for_mailbox_len(&c_address, 0).await;
    relay
        .wait_for_mailbox_len(b.client.account().address(), 0)
        .await;

    assert_eq!(
        shown(&a, &group),
        owned(&[
            ("hello from A", true),
            ("hello from B", false),
            ("after C left", true)
        ])
    );
    assert_eq!(
        shown(&b, &group),
        owned(&[
            ("hello from A", false),
            ("hello from B", true),
            ("after C left", false)
        ])
    );
    assert_eq!(
        shown(&c, &group),
        owned(&[("hello from A", false), ("hello from B", false)])
    );

    stop.cancel();
    for device in [a, b, c] {
        for task in device.tasks {
            task.await.unwrap().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_request_is_answered_by_the_running_timers() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let a = device(&relay, &dirs, "a", &stop).await;
    let mut b = device(&relay, &dirs, "b", &stop).await;
    let group = a.client.create_group("short stay").unwrap();
    a.client
        .add_member(&group, &b.client.bundle().unwrap())
        .unwrap();
    let joined = |g: &group::Event| {
        *g == group::Event::Joined {
            group: group.clone(),
        }
    };
    wait_for_group_event(&mut b, joined).await;

    // Nobody calls handle_timeout: A's run_timers task commits B's removal when it is due.
    b.client.leave_group(&group).unwrap();
    wait_for_group_event(&mut b, |g| {
        *g == group::Event::Removed {
            group: group.clone(),
        }
    })
    .await;
    assert_eq!(a.client.members(&group).unwrap().len(), 1);

    stop.cancel();
    for device in [a, b] {
        for task in device.tasks {
            task.await.unwrap().unwrap();
        }
    }
}

/// The outbox rows of an account: (envelope, recipients), oldest first.
fn outbox_rows(client: &Client) -> Vec<(Vec<u8>, String)> {
    client
        .account()
        .database()
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT envelope, recipients FROM outbox ORDER BY id")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
}

fn hand_in(client: &Client, envelope: &[u8]) -> Vec<Event> {
    client
        .account()
        .database()
        .transaction(|tx| client.handle_envelope(tx, 1_700_000_000, envelope))
        .unwrap()
}

#[test]
fn a_message_that_arrives_before_the_welcome_is_stashed_and_shown_after_joining() {
    let dirs = tempfile::tempdir().unwrap();
    let relay = kith_core::transport::RelayEndpoint::standard("relay.test");
    let make = |name| {
        Client::new(Account::create(&account_dir(&dirs, name), relay.clone()).unwrap()).unwrap()
    };
    let (a, b) = (make("a"), make("b"));

    let group = a.create_group("friends").unwrap();
    a.add_member(&group, &b.bundle().unwrap()).unwrap();
    a.send_text(&group, "sent before B joined").unwrap();
    let rows = outbox_rows(&a);
    // The Welcome, the hash of the commit that added B (a signed control frame), the
    // group's name message (re-sent to new members), then the text. (The admin list is in
    // the Welcome's group context.)
    assert_eq!(rows.len(), 4);
    assert!(rows
        .iter()
        .all(|(_, to)| to.contains(b.account().address())));
    let (welcome, later) = (&rows[0].0, &rows[1..]);

    // The later envelopes first: no key opens them, so they are stashed and nothing shows.
    for (envelope, _) in later {
        assert!(hand_in(&b, envelope).is_empty());
    }
    assert!(b.messages(&group).unwrap().is_empty());
    // The Welcome: B joins, the stashed message opens under the new epoch key.
    let events = hand_in(&b, welcome);
    assert!(events.contains(&Event::Group(group::Event::Joined {
        group: group.clone()
    })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::MessageReceived { .. })));
    assert_eq!(
        texts(&b.messages(&group).unwrap()),
        owned(&[("sent before B joined", false)])
    );

    // The same envelope again (the relay may duplicate): shown once.
    assert!(!hand_in(&b, &later[2].0)
        .iter()
        .any(|e| matches!(e, Event::MessageReceived { .. })));
    assert_eq!(texts(&b.messages(&group).unwrap()).len(), 1);
}
