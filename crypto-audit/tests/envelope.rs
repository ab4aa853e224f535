//! Integration tests for kith-crypto's envelope, frame, backup and the kith-audit binary.

mod envelope {
    mod check;
}
