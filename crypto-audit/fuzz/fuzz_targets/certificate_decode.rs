//! Device certificate decoding on arbitrary bytes (they arrive inside MLS credentials from
//! the network): must never panic; a decoded certificate re-encodes to exactly the input,
//! and verifying it never panics.
#![no_main]
use kith_crypto::certificate::DeviceCertificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(certificate) = DeviceCertificate::decode(data) {
        assert_eq!(certificate.encode(), data);
        let _ = certificate.verify(None);
    }
});
