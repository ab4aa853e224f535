//! The relay's structural filter on arbitrary bytes: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = kith_crypto::envelope::check_envelope(data);
    // The packet list agrees with the verdict.
    assert_eq!(
        verdict.is_ok(),
        kith_crypto::envelope::envelope_packets(data).is_ok()
    );
});
