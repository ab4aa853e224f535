//! Size buckets for envelope frames: Padmé above a 512-byte floor.
//!
//! A frame is padded so that its encoded length is a bucket size:
//! `bucket(n) = padme(max(n, MIN_BUCKET))`, where Padmé (Nikitin et al., "Reducing Metadata
//! Leakage from Encrypted Files and Communication with PURBs", PETS 2019) rounds `n` up so
//! that only the top `floor(log2(floor(log2 n))) + 1` bits of it may be non-zero. Padmé
//! leaks O(log log n) bits of the length and costs at most 12% (less for larger n); the
//! floor puts every short message (text, receipts, most MLS handshakes) in one bucket.
//! See PROTOCOL.md section 6.

/// The smallest bucket: every frame is at least this long.
pub const MIN_BUCKET: usize = 512;

/// The bucket a frame of `len` bytes is padded to (always `>= len`).
pub fn bucket_len(len: usize) -> usize {
    padme(len.max(MIN_BUCKET))
}

/// Whether `len` is a bucket size, that is `bucket_len(len) == len`.
pub fn is_bucket_len(len: usize) -> bool {
    bucket_len(len) == len
}

/// Padmé: rounds `len` up, keeping only its `floor(log2(E)) + 1` most significant bits,
/// where `E = floor(log2 len)`.
fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn padme_matches_the_papers_examples() {
        // E = floor(log2 n), S = floor(log2 E) + 1, the low E - S bits are rounded up.
        assert_eq!(padme(8), 8);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(600), 608);
        assert_eq!(padme(1024), 1024);
        assert_eq!(padme(1025), 1088);
        assert_eq!(padme(65_536), 65_536);
        assert_eq!(padme(65_537), 67_584);
    }

    #[test]
    fn short_frames_share_the_floor_bucket() {
        assert_eq!(bucket_len(0), MIN_BUCKET);
        assert_eq!(bucket_len(100), MIN_BUCKET);
        assert_eq!(bucket_len(MIN_BUCKET), MIN_BUCKET);
        assert_eq!(bucket_len(MIN_BUCKET + 1), 544);
    }

    proptest! {
        #[test]
        fn bucket_is_a_fixed_point_above_len_within_12_percent(len in 0usize..50_000_000) {
            let b = bucket_len(len);
            prop_assert!(b >= len);
            prop_assert!(is_bucket_len(b));
            prop_assert!(b <= len.max(MIN_BUCKET) + len.max(MIN_BUCKET) * 12 / 100 + 1);
        }
    }
}
