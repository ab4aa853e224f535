//! kith-audit: inspect envelopes, scan a relay's data directory, re-run known-answer vectors.
fn main() {}
