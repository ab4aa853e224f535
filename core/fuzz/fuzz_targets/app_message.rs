//! Fuzzes the application-content codec: any bytes an MLS member sends us must either
//! decode or fail cleanly, and whatever decodes must re-encode to something that decodes
//! to the same message.
#![no_main]
use kith_core::content::AppMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = AppMessage::decode(data) {
        let again = AppMessage::decode(&message.encode()).expect("re-encoded message decodes");
        assert_eq!(again, message);
    }
});
