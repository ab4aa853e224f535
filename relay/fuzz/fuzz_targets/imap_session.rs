//! Arbitrary client bytes into the IMAP session state machine (imap-codec framing and
//! parsing, then our command handling), against an in-memory mailbox.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kith_relay::imap::fuzz_session(data);
});
