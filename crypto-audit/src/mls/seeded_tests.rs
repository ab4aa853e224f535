//! A seeded provider replays byte for byte; an OS-random one does not; seeded HPKE output
//! opens with the unseeded RustCrypto.
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{HpkeAeadType, HpkeConfig, HpkeKdfType, HpkeKemType};
use rand::rngs::StdRng;
use rand::SeedableRng as _;
use rusqlite::Connection;

use super::{
    credential_with_key, group_create_config_for, new_key_package, run_migrations,
    DeviceSigningKey, KithCrypto, KithProvider, SeededRandomness,
};
use crate::certificate::{DeviceCertificate, DeviceId};
use crate::identity::IdentityKey;

/// Everything one scripted exchange put on the wire.
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    key_package: Vec<u8>,
    add_commit: Vec<u8>,
    welcome: Vec<u8>,
    update_commit: Vec<u8>,
}

fn database() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory sqlite");
    run_migrations(&mut conn).expect("migrations");
    conn
}

/// A device whose keys come from `seed` (they are not what is under test).
fn device(seed: u64, address: &str) -> (DeviceSigningKey, DeviceCertificate) {
    let mut rng = StdRng::seed_from_u64(seed);
    let identity = IdentityKey::generate(&mut rng);
    let signer = DeviceSigningKey::generate(&mut rng);
    let certificate = DeviceCertificate::issue(
        &identity,
        DeviceId::generate(&mut rng),
        signer.public_key(),
        address,
        1_700_000_000,
    )
    .expect("certificate");
    (signer, certificate)
}

fn bytes(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().expect("serialize")
}

/// Bob makes a KeyPackage; Alice creates a group, adds Bob (commit + Welcome) and then
/// commits a self-update (an UpdatePath: HPKE to Bob). `provider` builds each side's
/// provider over its database.
fn exchange(provider: impl Fn(&Connection, u8) -> KithProvider<'_>) -> Transcript {
    let (alice_signer, alice_cert) = device(1, "alice@relay.example");
    let (bob_signer, bob_cert) = device(2, "bob@relay.example");
    let (alice_db, bob_db) = (database(), database());
    let bob = provider(&bob_db, 2);
    let package = new_key_package(&bob, &bob_signer, &bob_cert, true).expect("key package");
    let key_package = package.key_package().clone();
    let alice = provider(&alice_db, 1);
    let mut group = MlsGroup::new(
        &alice,
        &alice_signer,
        &group_create_config_for(&alice),
        credential_with_key(&alice_cert),
    )
    .expect("create group");
    let (add_commit, welcome, _) = group
        .add_members(&alice, &alice_signer, std::slice::from_ref(&key_package))
        .expect("add Bob");
    group.merge_pending_commit(&alice).expect("merge add");
    let update = group
        .self_update(&alice, &alice_signer, LeafNodeParameters::default())
        .expect("self-update");
    Transcript {
        key_package: key_package.tls_serialize_detached().expect("serialize"),
        add_commit: bytes(&add_commit),
        welcome: bytes(&welcome),
        update_commit: bytes(update.commit()),
    }
}

fn seeded(base: u8) -> impl Fn(&Connection, u8) -> KithProvider<'_> {
    move |conn, side| KithProvider::seeded(conn, [base ^ side; 32])
}

#[test]
fn same_seed_gives_identical_bytes() {
    let first = exchange(seeded(7));
    // Cross a second boundary: a lifetime read from the wall clock (KeyPackages, the group
    // creator's leaf) would show up as a difference.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = exchange(seeded(7));
    assert_eq!(first, second);
}

#[test]
fn different_seeds_differ_everywhere() {
    let first = exchange(seeded(7));
    let second = exchange(seeded(8));
    assert_ne!(first.key_package, second.key_package);
    assert_ne!(first.add_commit, second.add_commit);
    assert_ne!(first.welcome, second.welcome);
    assert_ne!(first.update_commit, second.update_commit);
}

#[test]
fn os_randomness_differs_between_runs() {
    let first = exchange(|conn, _| KithProvider::new(conn));
    let second = exchange(|conn, _| KithProvider::new(conn));
    assert_ne!(first.key_package, second.key_package);
    assert_ne!(first.welcome, second.welcome);
    assert_ne!(first.update_commit, second.update_commit);
}

fn hpke_config() -> HpkeConfig {
    HpkeConfig(
        HpkeKemType::DhKem25519,
        HpkeKdfType::HkdfSha256,
        HpkeAeadType::AesGcm128,
    )
}

#[test]
fn seeded_hpke_interoperates_with_rust_crypto() {
    let plain = RustCrypto::default();
    let receiver = plain
        .derive_hpke_keypair(hpke_config(), &[3; 32])
        .expect("key pair");
    let seeded = KithCrypto::seeded([9; 32]);
    let sealed = seeded
        .hpke_seal(hpke_config(), &receiver.public, b"info", b"aad", b"hello")
        .expect("seal");
    let opened = plain
        .hpke_open(hpke_config(), &sealed, &receiver.private, b"info", b"aad")
        .expect("RustCrypto opens what the seeded provider sealed");
    assert_eq!(opened, b"hello");

    let (enc, sent) = seeded
        .hpke_setup_sender_and_export(hpke_config(), &receiver.public, b"info", b"ctx", 32)
        .expect("sender");
    let received = plain
        .hpke_setup_receiver_and_export(hpke_config(), &enc, &receiver.private, b"info", b"ctx", 32)
        .expect("receiver");
    assert_eq!(&sent[..], &received[..]);
}

#[test]
fn seeded_hpke_does_not_depend_on_the_order_of_sealings() {
    // openmls seals an UpdatePath's secrets in parallel: the order must not matter.
    let plain = RustCrypto::default();
    let receiver = plain
        .derive_hpke_keypair(hpke_config(), &[4; 32])
        .expect("key pair");
    let seal = |crypto: &KithCrypto, text: &[u8]| {
        crypto
            .hpke_seal(hpke_config(), &receiver.public, b"", b"", text)
            .expect("seal")
    };
    let (a, b) = (KithCrypto::seeded([1; 32]), KithCrypto::seeded([1; 32]));
    let (a_x, a_y) = (seal(&a, b"x"), seal(&a, b"y"));
    let (b_y, b_x) = (seal(&b, b"y"), seal(&b, b"x"));
    assert_eq!((&a_x, &a_y), (&b_x, &b_y));
    assert_ne!(
        a_x.kem_output, a_y.kem_output,
        "each sealing its own ephemeral key"
    );
    let other = KithCrypto::seeded([2; 32]);
    assert_ne!(seal(&other, b"x").kem_output, a_x.kem_output);
    let os = KithCrypto::from_os();
    assert_ne!(seal(&os, b"x"), seal(&os, b"x"));
    assert!(!os.is_seeded() && a.is_seeded());
}

#[test]
fn providers_sharing_a_stream_draw_in_call_order_and_only_when_needed() {
    let (signer, certificate) = device(3, "carol@relay.example");
    let package = |provider: &KithProvider<'_>| {
        new_key_package(provider, &signer, &certificate, false)
            .expect("key package")
            .key_package()
            .tls_serialize_detached()
            .expect("serialize")
    };
    let db = database();
    let fresh = package(&KithProvider::seeded(&db, [5; 32]));

    let stream = SeededRandomness::new([5; 32]);
    let db = database();
    // A provider that only reads (no group stored) draws nothing from the stream.
    let reader = KithProvider::drawing_from(&db, &stream);
    assert!(
        MlsGroup::load(reader.storage(), &GroupId::from_slice(b"none"))
            .expect("load")
            .is_none()
    );
    let first = package(&KithProvider::drawing_from(&db, &stream));
    let second = package(&KithProvider::drawing_from(&db, &stream));
    assert_eq!(first, fresh, "the read drew nothing");
    assert_ne!(first, second, "the next provider continues the stream");
}
