//! Seal and open for every key kind: round trips, tampering, wrong keys, hints and sizes.

use std::io::{Read, Write};

use kith_crypto::envelope::{
    check_envelope, envelope_packets, find_key, hint_matches, open, seal, DeviceKeypair,
    EnvelopeError, OpenKey, SealKey, SymmetricKey, SymmetricKind,
};
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::padding::bucket_len;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sequoia_openpgp::armor;

const FROM: &str = "k7x2m9q4@relay.example";
const NOW: u64 = 1_800_000_123;

/// Owns one key of each kind, so tests can pick a (seal, open) pair by index.
struct Keys {
    epoch: SymmetricKey,
    invite: SymmetricKey,
    device: DeviceKeypair,
}

impl Keys {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rng, &mut bytes);
        let epoch = SymmetricKey::new(SymmetricKind::Epoch, bytes);
        rand::RngCore::fill_bytes(&mut rng, &mut bytes);
        let invite = SymmetricKey::new(SymmetricKind::Invite, bytes);
        Keys {
            epoch,
            invite,
            device: DeviceKeypair::generate(&mut rng),
        }
    }

    fn seal_and_open(&self, which: usize) -> (SealKey<'_>, OpenKey<'_>) {
        match which {
            0 => (
                SealKey::Symmetric(&self.epoch),
                OpenKey::Symmetric(&self.epoch),
            ),
            1 => (
                SealKey::Symmetric(&self.invite),
                OpenKey::Symmetric(&self.invite),
            ),
            _ => {
                let public = Box::leak(Box::new(self.device.public()));
                (SealKey::Device(public), OpenKey::Device(&self.device))
            }
        }
    }
}

fn seal_frame(frame: &Frame, key: SealKey<'_>, seed: u64) -> Vec<u8> {
    seal(frame, key, FROM, NOW, &mut StdRng::seed_from_u64(seed)).expect("sealing succeeds")
}

fn frame(payload: Vec<u8>) -> Frame {
    Frame {
        kind: FrameKind::Mls,
        payload,
    }
}

/// Splits a sealed message into (text before armor, de-armored payload, text after).
fn split_armor(mail: &[u8]) -> (String, Vec<u8>, String) {
    let text = String::from_utf8(mail.to_vec()).expect("envelopes are ASCII");
    let start = text
        .find("-----BEGIN PGP MESSAGE-----")
        .expect("armor start");
    let end_marker = "-----END PGP MESSAGE-----";
    let end = text.find(end_marker).expect("armor end") + end_marker.len();
    let mut payload = Vec::new();
    armor::Reader::from_bytes(
        &text.as_bytes()[start..end],
        armor::ReaderMode::Tolerant(Some(armor::Kind::Message)),
    )
    .read_to_end(&mut payload)
    .expect("our own armor parses");
    (text[..start].to_owned(), payload, text[end..].to_owned())
}

fn rearmor(before: &str, payload: &[u8], after: &str) -> Vec<u8> {
    let mut w = armor::Writer::new(Vec::new(), armor::Kind::Message).expect("armor writer");
    w.write_all(payload).expect("write");
    let armored = String::from_utf8(w.finalize().expect("finalize")).expect("ASCII");
    format!(
        "{before}{}{after}",
        armored.trim_end().replace('\n', "\r\n")
    )
    .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn open_of_seal_is_identity(which in 0usize..3, payload in prop::collection::vec(any::<u8>(), 0..3000), seed in any::<u64>()) {
        let keys = Keys::new(seed);
        let (seal_key, open_key) = keys.seal_and_open(which);
        let frame = frame(payload);
        let mail = seal_frame(&frame, seal_key, seed);
        prop_assert!(check_envelope(&mail).is_ok());
        prop_assert!(hint_matches(&mail, open_key));
        prop_assert_eq!(open(&mail, open_key).expect("opens"), frame);
    }

    #[test]
    fn any_flipped_bit_in_the_payload_is_rejected(which in 0usize..3, bit in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let keys = Keys::new(seed);
        let (seal_key, open_key) = keys.seal_and_open(which);
        let mail = seal_frame(&frame(b"attack at dawn".to_vec()), seal_key, seed);
        let (before, mut payload, after) = split_armor(&mail);
        let bit = bit.index(payload.len() * 8);
        payload[bit / 8] ^= 1 << (bit % 8);
        let tampered = rearmor(&before, &payload, &after);
        prop_assert!(open(&tampered, open_key).is_err(), "bit {} flipped and still opened", bit);
    }

    #[test]
    fn a_wrong_key_is_rejected(which in 0usize..3, seed in any::<u64>()) {
        let keys = Keys::new(seed);
        let other = Keys::new(seed.wrapping_add(1));
        let (seal_key, _) = keys.seal_and_open(which);
        let (_, wrong) = other.seal_and_open(which);
        let mail = seal_frame(&frame(vec![1, 2, 3]), seal_key, seed);
        prop_assert!(!hint_matches(&mail, wrong));
        prop_assert!(matches!(open(&mail, wrong), Err(EnvelopeError::WrongKey)));
    }

    #[test]
    fn sealed_sizes_depend_only_on_the_bucket(which in 0usize..3, a in 0usize..70_000, b in 0usize..70_000) {
        let keys = Keys::new(7);
        let (seal_key, _) = keys.seal_and_open(which);
        let size = |len: usize| seal_frame(&frame(vec![0x55; len]), seal_key, len as u64).len();
        let bucket = |len: usize| bucket_len(len + kith_crypto::frame::FRAME_HEADER_LEN);
        if bucket(a) == bucket(b) {
            prop_assert_eq!(size(a), size(b));
        } else {
            prop_assert_ne!(size(a), size(b));
        }
    }
}

#[test]
fn an_epoch_key_does_not_open_an_invite_envelope_with_the_same_bytes() {
    let epoch = SymmetricKey::new(SymmetricKind::Epoch, [9; 32]);
    let invite = SymmetricKey::new(SymmetricKind::Invite, [9; 32]);
    let mail = seal_frame(&frame(vec![4; 10]), SealKey::Symmetric(&invite), 1);
    assert!(matches!(
        open(&mail, OpenKey::Symmetric(&epoch)),
        Err(EnvelopeError::WrongKey)
    ));
    assert!(open(&mail, OpenKey::Symmetric(&invite)).is_ok());
}

#[test]
fn find_key_picks_the_key_the_message_was_sealed_to() {
    let keys = Keys::new(3);
    let public = keys.device.public();
    let candidates = [
        OpenKey::Symmetric(&keys.epoch),
        OpenKey::Symmetric(&keys.invite),
        OpenKey::Device(&keys.device),
    ];
    let sealed = [
        seal_frame(&frame(vec![1]), SealKey::Symmetric(&keys.epoch), 1),
        seal_frame(&frame(vec![1]), SealKey::Symmetric(&keys.invite), 2),
        seal_frame(&frame(vec![1]), SealKey::Device(&public), 3),
    ];
    for (i, mail) in sealed.iter().enumerate() {
        assert_eq!(find_key(mail, &candidates), Some(i));
    }
    let stranger = Keys::new(4);
    assert_eq!(
        find_key(&sealed[0], &[OpenKey::Symmetric(&stranger.epoch)]),
        None
    );
}

#[test]
fn outer_headers_are_exactly_the_minimal_set() {
    let keys = Keys::new(5);
    let mail = seal_frame(&frame(vec![1; 50]), SealKey::Symmetric(&keys.epoch), 9);
    let text = String::from_utf8(mail).expect("ASCII");
    let head = text.split("\r\n\r\n").next().expect("header block");
    let names: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(':').next().expect("header name"))
        .collect();
    assert_eq!(
        names,
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type"
        ]
    );
    assert!(head.contains("From: k7x2m9q4@relay.example\r\n"));
    assert!(head.contains("To: undisclosed-recipients:;\r\n"));
    assert!(head.contains("Subject: [...]\r\n"));
    assert!(
        head.contains("Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"),
        "{head}"
    );
    let id = head.split("Message-ID: <").nth(1).expect("message id");
    assert!(id.starts_with(|c: char| c.is_ascii_hexdigit()));
    assert_eq!(id.find('@'), Some(64));
}

#[test]
fn sealed_packets_are_filtermail_strict_and_seipd_v2() {
    let keys = Keys::new(6);
    for which in 0..3 {
        let (seal_key, _) = keys.seal_and_open(which);
        let mail = seal_frame(&frame(vec![3; 9000]), seal_key, 1);
        let packets = envelope_packets(&mail).expect("valid envelope");
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].tag, if which == 2 { 1 } else { 3 });
        assert_eq!(packets[0].version, Some(6), "SKESK v6 / PKESK v6");
        assert_eq!((packets[1].tag, packets[1].version), (18, Some(2)));
        assert!(packets.iter().all(|p| !p.is_partial && !p.is_legacy_format));
    }
}

#[test]
fn bad_sender_addresses_are_refused() {
    let keys = Keys::new(8);
    for from in [
        "",
        "no-at-sign",
        "a@b\r\nBcc: x@y",
        "Name <a@b>",
        "a@",
        "@b",
        "a@b@c",
    ] {
        let result = seal(
            &frame(vec![]),
            SealKey::Symmetric(&keys.epoch),
            from,
            NOW,
            &mut StdRng::seed_from_u64(1),
        );
        assert!(
            matches!(result, Err(EnvelopeError::BadSenderAddress)),
            "{from:?}"
        );
    }
}

#[test]
fn overhead_table() {
    // Printed for PROTOCOL.md (run with --nocapture); asserts only that sizes grow.
    let keys = Keys::new(10);
    let mut last = 0;
    for len in [100usize, 1024, 65_536] {
        let mut row = format!("payload {len:>6} B:");
        for which in 0..3 {
            let (seal_key, _) = keys.seal_and_open(which);
            let size = seal_frame(&frame(vec![0xAA; len]), seal_key, 1).len();
            assert!(size > len);
            row.push_str(&format!(" {size:>6} (+{:>5})", size - len));
            last = last.max(size);
        }
        println!("{row}");
    }
    assert!(last > 65_536);
}
