//! Fuzzes the rejoin-request codec (the payload of a Control frame any device may seal to
//! an admin's device key): any bytes decode or are refused cleanly, and what decodes
//! re-encodes to the same request.
#![no_main]
use kith_core::group::RejoinRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(request) = RejoinRequest::decode(data) {
        let again = RejoinRequest::decode(&request.encode()).expect("re-encoded request decodes");
        assert_eq!(again, request);
    }
});
