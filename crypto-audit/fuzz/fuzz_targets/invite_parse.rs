//! Invite links and QR payloads (typed, scanned or clicked by a user): parsing arbitrary
//! text and decoding arbitrary bytes must never panic, and what parses round-trips.
#![no_main]
use kith_crypto::invite::InvitePayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = InvitePayload::decode(data) {
        let encoded = payload.encode().expect("a decoded invite re-encodes");
        assert_eq!(InvitePayload::decode(&encoded).expect("re-decodes"), payload);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(payload) = InvitePayload::parse(text) {
            let uri = payload.to_uri().expect("a parsed invite has a URI form");
            assert_eq!(InvitePayload::parse(&uri).expect("its URI parses"), payload);
        }
    }
});
