//! Arbitrary messages into the submission header filter.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kith_relay::smtp::fuzzing::filter_headers(data);
});
