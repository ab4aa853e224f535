//! Integration tests for kith-crypto's envelope, frame, backup and the kith-audit binary.

mod envelope {
    mod audit_cli;
    mod backup;
    mod check;
    mod seal_open;
}
