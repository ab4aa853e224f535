//! Arbitrary client bytes into the SMTP session state machine.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kith_relay::smtp::fuzzing::drive_session(data);
});
