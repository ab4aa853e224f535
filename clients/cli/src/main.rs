//! The `kith` command-line client.
fn main() {}
