//! Measures what the group engine's operations cost for groups of 100 and 1,000 devices:
//! add one device, remove one, self-update, encrypt one message, decrypt it, and join from
//! a Welcome. Each figure includes the engine's own work (snapshot before merge, epoch key
//! export, bookkeeping) inside one SQLite transaction on a temp file, as in production.
//!
//! `cargo run -p kith-core --example group_costs [sizes...]`
use std::time::{Duration, Instant};

use kith_core::content::Content;
use kith_core::group::{GroupEngine, GroupId, Incoming, NewDevice, OpenedWith, Output};
use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::{begin_immediate, run_migrations, DeviceSigningKey};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rusqlite::Connection;

struct Device {
    engine: GroupEngine,
    conn: Connection,
    identity: IdentityKey,
}

fn device(path: Option<&std::path::Path>, i: usize, rng: &mut StdRng) -> Device {
    let mut conn = match path {
        Some(p) => Connection::open(p).expect("open"),
        None => Connection::open_in_memory().expect("open"),
    };
    run_migrations(&mut conn).expect("migrations");
    kith_core::group::migrate(&conn).expect("migrations");
    let identity = IdentityKey::generate(rng);
    let signer = DeviceSigningKey::generate(rng);
    let cert = DeviceCertificate::issue(
        &identity,
        DeviceId::generate(rng),
        signer.public_key(),
        &format!("d{i}@bench.example"),
        1_700_000_000,
    )
    .expect("certificate");
    Device {
        engine: GroupEngine::new(signer, cert).expect("engine"),
        conn,
        identity,
    }
}

fn new_device(d: &Device) -> NewDevice {
    let tx = begin_immediate(&d.conn).expect("begin");
    let key_package = d.engine.key_packages(&tx, 1).expect("kp").remove(0);
    tx.commit().expect("commit");
    NewDevice {
        key_package,
        identity: d.identity.public_key(),
    }
}

fn timed<T>(d: &Device, f: impl FnOnce(&GroupEngine, &Connection) -> T) -> (T, Duration) {
    let start = Instant::now();
    let tx = begin_immediate(&d.conn).expect("begin");
    let value = f(&d.engine, &tx);
    tx.commit().expect("commit");
    (value, start.elapsed())
}

fn welcome_for(out: &Output) -> Incoming {
    let frame = out
        .outgoing
        .iter()
        .find(|o| matches!(o.key, kith_core::group::SealKey::Device { .. }))
        .expect("a Welcome")
        .frame
        .clone();
    Incoming {
        frame,
        opened_with: OpenedWith::Device,
        stash_id: None,
    }
}

fn measure(n: usize, dir: &std::path::Path) {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let admin = device(Some(&dir.join(format!("admin{n}.db"))), 0, &mut rng);
    let member = device(Some(&dir.join(format!("member{n}.db"))), 1, &mut rng);
    let now = 1_700_000_000;
    let (group, _) = timed(&admin, |e, db| {
        e.create_group(db, now, &mut StdRng::seed_from_u64(1), "bench")
    });
    let (group, _): (GroupId, Output) = group.expect("create");
    // Fill the group: the member plus n - 3 others (whose state we do not keep), in one
    // commit; then one more device is added and removed while timed.
    let mut devices = vec![new_device(&member)];
    for i in 2..n - 1 {
        devices.push(new_device(&device(None, i, &mut rng)));
    }
    let (out, fill) = timed(&admin, |e, db| e.add_devices(db, now, &group, devices));
    let out = out.expect("fill");
    let (_, join) = timed(&member, |e, db| {
        e.receive(db, now, welcome_for(&out)).expect("join")
    });

    let extra = device(None, n, &mut rng);
    let (out, add) = timed(&admin, |e, db| {
        e.add_devices(db, now, &group, vec![new_device(&extra)])
    });
    let commit = out.expect("add").outgoing[0].clone();
    let deliver = |o: &kith_core::group::Outgoing| Incoming {
        frame: o.frame.clone(),
        opened_with: OpenedWith::Device,
        stash_id: None,
    };
    timed(&member, |e, db| {
        e.receive(db, now, deliver(&commit)).expect("commit")
    });
    let address = format!("d{n}@bench.example");
    let (out, remove) = timed(&admin, |e, db| {
        e.remove_devices(db, now, &group, vec![address])
    });
    let commit = out.expect("remove").outgoing[0].clone();
    timed(&member, |e, db| {
        e.receive(db, now, deliver(&commit)).expect("commit")
    });
    let (out, update) = timed(&admin, |e, db| e.self_update(db, now, &group));
    let commit = out.expect("update").outgoing[0].clone();
    let (_, process_update) = timed(&member, |e, db| {
        e.receive(db, now, deliver(&commit)).expect("commit")
    });
    let text = Content::Text {
        body: "x".repeat(100),
        reply_to: None,
    };
    let (sent, encrypt) = timed(&admin, |e, db| {
        e.send(db, now, &mut StdRng::seed_from_u64(2), &group, text)
    });
    let message = sent.expect("send").1.outgoing[0].clone();
    let (shown, decrypt) = timed(&member, |e, db| {
        e.receive(db, now, deliver(&message)).expect("decrypt")
    });
    assert_eq!(shown.events.len(), 1, "the message was shown");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (_, load_only) = timed(&admin, |e, db| e.epoch(db, &group).expect("epoch"));
    let (_, members) = timed(&admin, |e, db| e.members(db, &group).expect("members"));
    eprintln!(
        "n={n}: load+export {:.1} ms, load+verify all certificates {:.1} ms",
        ms(load_only),
        ms(members)
    );
    println!(
        "| {n:>5} | {:>9.1} | {:>7.1} | {:>6.1} | {:>7.1} | {:>11.1} | {:>11.1} | {:>7.2} | {:>7.2} |",
        ms(fill),
        ms(join),
        ms(add),
        ms(remove),
        ms(update),
        ms(process_update),
        ms(encrypt),
        ms(decrypt)
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().expect("tempdir");
    println!("| members | fill (ms) | join | add 1 | remove 1 | self-update | process update | encrypt | decrypt |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        measure(n, dir.path());
    }
}
