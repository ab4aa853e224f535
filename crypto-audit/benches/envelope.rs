//! Per-message cost of sealing and opening envelopes, and the cost of a backup.
//! Run: `cargo bench -p kith-crypto --bench envelope`.
use criterion::{criterion_group, criterion_main, Criterion};
use kith_crypto::backup::{decrypt_backup, encrypt_backup};
use kith_crypto::envelope::{
    check_envelope, open, seal, DeviceKeypair, OpenKey, SealKey, SymmetricKey, SymmetricKind,
};
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::recovery_code::RecoveryCode;
use rand::rngs::OsRng;

const FROM: &str = "k7x2m9q4@relay.example";

fn envelopes(c: &mut Criterion) {
    let epoch = SymmetricKey::new(SymmetricKind::Epoch, [1; 32]);
    let device = DeviceKeypair::generate(&mut OsRng);
    let public = device.public();
    let frame = Frame {
        kind: FrameKind::Mls,
        payload: vec![0x42; 1024],
    };
    for (name, seal_key, open_key) in [
        (
            "epoch",
            SealKey::Symmetric(&epoch),
            OpenKey::Symmetric(&epoch),
        ),
        ("device", SealKey::Device(&public), OpenKey::Device(&device)),
    ] {
        c.bench_function(&format!("seal 1 KiB ({name} key)"), |b| {
            b.iter(|| seal(&frame, seal_key, FROM, 1_800_000_000, &mut OsRng).expect("seal"))
        });
        let mail = seal(&frame, seal_key, FROM, 1_800_000_000, &mut OsRng).expect("seal");
        c.bench_function(&format!("open 1 KiB ({name} key)"), |b| {
            b.iter(|| open(&mail, open_key).expect("open"))
        });
        c.bench_function(&format!("check_envelope 1 KiB ({name} key)"), |b| {
            b.iter(|| check_envelope(&mail).expect("valid"))
        });
    }
}

fn backup(c: &mut Criterion) {
    let code = RecoveryCode::generate(&mut OsRng);
    let plaintext = vec![7u8; 64 * 1024];
    let backup = encrypt_backup(&plaintext, &code).expect("encrypt");
    let mut group = c.benchmark_group("backup");
    group.sample_size(10);
    group.bench_function("decrypt 64 KiB (Argon2id t=3 p=4 m=64 MiB)", |b| {
        b.iter(|| decrypt_backup(&backup, &code).expect("decrypt"))
    });
    group.finish();
}

criterion_group!(benches, envelopes, backup);
criterion_main!(benches);
