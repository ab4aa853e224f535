//! Backups under a recovery code: round trip, wrong code, typos, tampering, and the exact
//! OpenPGP structure (SKESK v6 + Argon2id, SEIPD v2).

use std::io::{Read, Write};

use kith_crypto::backup::{decrypt_backup, encrypt_backup, BackupError};
use kith_crypto::recovery_code::{RecoveryCode, RecoveryCodeError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sequoia_openpgp::armor;
use sequoia_openpgp::crypto::S2K;
use sequoia_openpgp::packet::{Packet, SKESK};
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::types::{AEADAlgorithm, SymmetricAlgorithm};
use sequoia_openpgp::PacketPile;

const PLAINTEXT: &[u8] = b"identity key, contacts, groups";

fn code(seed: u64) -> RecoveryCode {
    RecoveryCode::generate(&mut StdRng::seed_from_u64(seed))
}

fn dearmor(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    armor::Reader::from_bytes(
        bytes,
        armor::ReaderMode::Tolerant(Some(armor::Kind::Message)),
    )
    .read_to_end(&mut out)
    .expect("backup is armored");
    out
}

fn rearmor(payload: &[u8]) -> Vec<u8> {
    let mut w = armor::Writer::new(Vec::new(), armor::Kind::Message).expect("armor writer");
    w.write_all(payload).expect("write");
    w.finalize().expect("finalize")
}

#[test]
fn round_trip_and_wrong_code() {
    let c = code(1);
    let backup = encrypt_backup(PLAINTEXT, &c).expect("encrypts");
    assert!(backup.starts_with(b"-----BEGIN PGP MESSAGE-----"));
    // The user types the code back in, in lower case with spaces.
    let typed = c.to_display_string().to_lowercase().replace('-', " ");
    let parsed = RecoveryCode::parse(&typed).expect("typed code parses");
    assert_eq!(
        &*decrypt_backup(&backup, &parsed).expect("decrypts"),
        PLAINTEXT
    );
    assert!(matches!(
        decrypt_backup(&backup, &code(2)),
        Err(BackupError::WrongCode)
    ));
}

#[test]
fn a_typo_is_caught_before_decryption() {
    let shown = code(3).to_display_string();
    let mut chars: Vec<char> = shown.chars().collect();
    chars[0] = if chars[0] == '7' { '8' } else { '7' };
    let typo: String = chars.iter().collect();
    assert_eq!(
        RecoveryCode::parse(&typo),
        Err(RecoveryCodeError::ChecksumMismatch)
    );
    let mut swapped: Vec<char> = shown.chars().collect();
    let i = (0..swapped.len() - 1)
        .find(|&i| swapped[i] != swapped[i + 1] && swapped[i] != '-' && swapped[i + 1] != '-')
        .expect("some adjacent symbols differ");
    swapped.swap(i, i + 1);
    let swapped: String = swapped.iter().collect();
    assert_eq!(
        RecoveryCode::parse(&swapped),
        Err(RecoveryCodeError::ChecksumMismatch)
    );
}

#[test]
fn tampered_ciphertext_is_rejected() {
    let c = code(4);
    let backup = encrypt_backup(PLAINTEXT, &c).expect("encrypts");
    let mut payload = dearmor(&backup);
    let last = payload.len() - 20; // inside the SEIPD's AEAD data
    payload[last] ^= 0x01;
    let tampered = rearmor(&payload);
    let result = decrypt_backup(&tampered, &c);
    assert!(
        matches!(result, Err(BackupError::Damaged { .. })),
        "{result:?}"
    );
}

#[test]
fn structure_is_skesk6_argon2_then_seipd2() {
    let backup = encrypt_backup(PLAINTEXT, &code(5)).expect("encrypts");
    let pile = PacketPile::from_bytes(&dearmor(&backup)).expect("parses");
    let packets: Vec<&Packet> = pile.children().collect();
    assert_eq!(packets.len(), 2);
    let Packet::SKESK(SKESK::V6(skesk)) = packets[0] else {
        panic!("first packet is not SKESK v6: {:?}", packets[0]);
    };
    assert!(matches!(
        skesk.s2k(),
        S2K::Argon2 {
            t: 3,
            p: 4,
            m: 16,
            ..
        }
    ));
    assert_eq!(skesk.aead_algo(), AEADAlgorithm::OCB);
    assert_eq!(skesk.symmetric_algo(), SymmetricAlgorithm::AES256);
    let Packet::SEIP(seip) = packets[1] else {
        panic!("second packet is not SEIPD");
    };
    assert_eq!(seip.version(), 2);
}
