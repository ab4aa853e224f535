//! The `kith` binary's contact commands end to end against a real relay on loopback: A
//! invites, B joins, both see the same code and each other as verified contacts, A makes a
//! group from the contact and they exchange texts; bad links and unknown contacts give
//! their exit codes.
use std::path::Path;

use std::time::{Duration, Instant};

mod support;

use kith_e2e::{start_relay, DOMAIN};
use support::{init, kith, run, sync_until_received};

/// How long the whole exchange may take before the test gives up (not a speed claim).
const OVERALL: Duration = Duration::from_secs(240);

/// Syncs in short rounds until a contact is added; returns its (address, code).
fn sync_until_contact(dir: &Path, deadline: Instant) -> (String, String) {
    loop {
        let out = kith(dir, &["sync", "--seconds", "2"]);
        if let Some(added) = out["contacts_added"].as_array().and_then(|a| a.first()) {
            return (
                added["contact"].as_str().expect("contact").to_owned(),
                added["sas"].as_str().expect("sas").to_owned(),
            );
        }
        assert!(Instant::now() < deadline, "no contact was added: {out}");
    }
}

#[test]
fn invite_join_contacts_and_a_group_from_a_contact_through_the_cli() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let relay = runtime.block_on(start_relay()).expect("starting the relay");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let deadline = Instant::now() + OVERALL;
    let address_a = init(&relay, a.path());
    let address_b = init(&relay, b.path());

    let invite = kith(a.path(), &["invite", "--ttl", "600"]);
    let uri = invite["uri"].as_str().expect("uri").to_owned();
    assert!(uri.starts_with("kith:i1/"), "{uri}");
    assert!(invite["https_url"]
        .as_str()
        .expect("https")
        .starts_with(&format!("https://{DOMAIN}/i1#")));
    let joining = kith(b.path(), &["join", &uri]);
    let sas = joining["sas"].as_str().expect("sas").to_owned();
    assert_eq!(sas.len(), 7, "{sas}");

    assert_eq!(
        sync_until_contact(a.path(), deadline),
        (address_b.clone(), sas.clone())
    );
    assert_eq!(
        sync_until_contact(b.path(), deadline),
        (address_a.clone(), sas)
    );
    let contacts = kith(a.path(), &["contacts"]);
    let list = contacts.as_array().expect("contacts list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["verified"], true);
    assert_eq!(list[0]["devices"][0]["address"], address_b.as_str());
    assert_eq!(list[0]["devices"][0]["key_packages"], 4);

    let group = kith(a.path(), &["group", "create", "friends"])["group"]
        .as_str()
        .expect("group id")
        .to_owned();
    assert_eq!(
        kith(a.path(), &["group", "add", &group, &address_b])["added"],
        true
    );
    let hello = "hello, contact";
    kith(a.path(), &["send", &group, hello]);
    assert_eq!(sync_until_received(b.path(), &group, hello, deadline), 1);
    let chats = kith(b.path(), &["chats"]);
    assert_eq!(chats[0]["group"], group.as_str());
    kith(b.path(), &["send", &group, "hello back"]);
    assert_eq!(
        sync_until_received(a.path(), &group, "hello back", deadline),
        1
    );

    // Exit codes: a damaged link, an unknown contact.
    let damaged = &uri[..uri.len() - 4];
    assert_eq!(run(b.path(), &["join", damaged]).status.code(), Some(3));
    assert_eq!(
        run(b.path(), &["join", "mailto:x@y"]).status.code(),
        Some(3)
    );
    let unknown = run(a.path(), &["group", "add", &group, "nobody@localhost"]);
    assert_eq!(unknown.status.code(), Some(6));
    relay.ctx.shutdown.cancel();
}
