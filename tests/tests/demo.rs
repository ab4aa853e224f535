//! The README's main command keeps working: `kith-demo` runs to the end, every device reads
//! what was meant for it, the relay refuses plaintext, and the removed member reads nothing
//! sent after her removal (the demo itself fails otherwise).
use std::process::Command;

#[test]
fn the_demo_runs_end_to_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-demo"))
        .output()
        .expect("running kith-demo");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kith-demo failed:\n{text}\n{errors}");
    for expected in [
        "refused by the relay: permanent error (523)",
        "bob shows [\"Hi both, this is an MLS group.\"]; carol shows [\"Hi both, this is an MLS group.\"]",
        "carol shows [\"Hi both, this is an MLS group.\"]",
        "Messages left on the relay for bob: 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
