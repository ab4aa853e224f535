//! The `kith-relay` binary.
fn main() {}
