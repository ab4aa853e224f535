//! Fingerprint URIs (from QR codes) and typed safety numbers: never panic.
#![no_main]
use kith_crypto::fingerprint::Fingerprint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(fingerprint) = Fingerprint::parse_uri(text) {
        assert_eq!(Fingerprint::parse_uri(&fingerprint.to_uri()).expect("round trip"), fingerprint);
        let _ = fingerprint.matches_safety_number(text);
    }
});
