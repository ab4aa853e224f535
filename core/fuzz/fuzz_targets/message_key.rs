//! The only bytes from the network kith-core parses itself: the header section of a fetched
//! envelope, for its Message-ID (mail-parser does the parsing). It must never panic, and
//! the key it gives must be one of the two documented forms.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = kith_core::transport::message_key(data, 7, 42);
    assert!(key.0.starts_with("mid:") || key.0 == "uid:7:42");
});
