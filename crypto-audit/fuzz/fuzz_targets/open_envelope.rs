//! Opening arbitrary bytes with fixed keys of each kind: must never panic, and anything
//! that opens must also pass the relay's filter.
#![no_main]
use kith_crypto::envelope::{check_envelope, open, DeviceKeypair, OpenKey, SymmetricKey, SymmetricKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let epoch = SymmetricKey::new(SymmetricKind::Epoch, [0x11; 32]);
    let invite = SymmetricKey::new(SymmetricKind::Invite, [0x22; 32]);
    let device = DeviceKeypair::from_secret_bytes([0x33; 32]);
    for key in [
        OpenKey::Symmetric(&epoch),
        OpenKey::Symmetric(&invite),
        OpenKey::Device(&device),
    ] {
        if open(data, key).is_ok() {
            assert!(check_envelope(data).is_ok());
        }
    }
});
