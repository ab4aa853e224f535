//! The relay's structural filter against GnuPG-made fixtures (someone else's idea of a
//! correct PGP/MIME message) and against messages it must reject.

use std::path::PathBuf;

use kith_crypto::envelope::{check_envelope, envelope_packets, EnvelopeError};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn accepts_gnupg_public_key_message() {
    let packets = envelope_packets(&fixture("accept-gpg-pkesk.eml")).expect("valid envelope");
    let tags: Vec<u8> = packets.iter().map(|p| p.tag).collect();
    assert_eq!(tags, [1, 18]);
    assert_eq!(packets[0].version, Some(3), "GnuPG writes PKESK v3");
    assert_eq!(packets[1].version, Some(1), "GnuPG 2.2 writes SEIPD v1");
}

#[test]
fn accepts_gnupg_symmetric_message() {
    let packets = envelope_packets(&fixture("accept-gpg-skesk.eml")).expect("valid envelope");
    let tags: Vec<u8> = packets.iter().map(|p| p.tag).collect();
    assert_eq!(tags, [3, 18]);
    assert_eq!(packets[0].version, Some(4));
}

#[test]
fn accepts_gnupg_partial_body_lengths() {
    let packets =
        envelope_packets(&fixture("accept-gpg-partial-lengths.eml")).expect("valid envelope");
    assert!(
        packets[1].is_partial,
        "the large message uses partial lengths"
    );
    assert!(packets[1].body_len > 20_000);
}

#[test]
fn rejects_plaintext_mail() {
    let err = check_envelope(&fixture("reject-plaintext.eml")).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::NotMultipartEncrypted),
        "{err:?}"
    );
}

#[test]
fn rejects_signed_only_mail() {
    let err = check_envelope(&fixture("reject-signed-only.eml")).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::NotMultipartEncrypted),
        "{err:?}"
    );
}

#[test]
fn rejects_seipd_followed_by_literal() {
    let err = check_envelope(&fixture("reject-seipd-then-literal.eml")).unwrap_err();
    assert!(matches!(err, EnvelopeError::TrailingData { .. }), "{err:?}");
}

#[test]
fn rejects_compressed_packet_at_top() {
    let err = check_envelope(&fixture("reject-compressed-at-top.eml")).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::UnexpectedPacket { tag: 8, offset: 0 }),
        "{err:?}"
    );
}

#[test]
fn rejects_literal_packet_at_top() {
    let err = check_envelope(&fixture("reject-literal-at-top.eml")).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::UnexpectedPacket { tag: 11, offset: 0 }),
        "{err:?}"
    );
}

#[test]
fn rejects_truncated_armor() {
    let err = check_envelope(&fixture("reject-truncated-armor.eml")).unwrap_err();
    assert!(matches!(err, EnvelopeError::BadArmor { .. }), "{err:?}");
}

#[test]
fn rejects_truncated_seipd() {
    let err = check_envelope(&fixture("reject-truncated-seipd.eml")).unwrap_err();
    assert!(matches!(err, EnvelopeError::BadPacket { .. }), "{err:?}");
}

#[test]
fn rejects_garbage_and_empty_input() {
    assert!(check_envelope(b"").is_err());
    assert!(check_envelope(b"\xff\xfe garbage").is_err());
}

#[test]
fn rejects_a_third_mime_part() {
    let good = fixture("accept-gpg-skesk.eml");
    let text = String::from_utf8(good).expect("fixture is ASCII");
    let extra = "--kith-fixture-boundary\r\nContent-Type: text/plain\r\n\r\nleak\r\n\
                 --kith-fixture-boundary--";
    let tampered = text.replacen("--kith-fixture-boundary--", extra, 1);
    let err = check_envelope(tampered.as_bytes()).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::ExtraParts { count: 3 }),
        "{err:?}"
    );
}
