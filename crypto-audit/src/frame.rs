//! The Kith frame: the plaintext inside an envelope's SEIPD packet.
//!
//! Plain data with one codec, in the manner of rustls's `msgs/`. Layout (PROTOCOL.md §6):
//!
//! ```text
//! u8  version        = 1
//! u8  kind           (FrameKind)
//! u32 payload_len    big-endian
//! [payload_len] payload
//! [..] padding       zero bytes, so the whole frame is a bucket size (padding.rs)
//! ```

use crate::padding::bucket_len;

/// The only frame version this code writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// Length of the fixed frame header (version, kind, payload length).
pub const FRAME_HEADER_LEN: usize = 6;
/// The largest payload a frame may carry (16 MiB); larger input is rejected.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

/// What a frame's payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameKind {
    /// An MLS message (RFC 9420 `MLSMessage`: public or private message, Welcome, KeyPackage).
    Mls,
    /// A message of the invite or device-link handshake.
    Handshake,
    /// A Kith control message outside MLS (for example a delivery or resend request).
    Control,
}

impl FrameKind {
    /// The kind's wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            FrameKind::Mls => 1,
            FrameKind::Handshake => 2,
            FrameKind::Control => 3,
        }
    }

    /// The kind for a wire value, if it is one we know.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(FrameKind::Mls),
            2 => Some(FrameKind::Handshake),
            3 => Some(FrameKind::Control),
            _ => None,
        }
    }
}

/// Why bytes are not a valid frame, or a frame cannot be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the fixed header.
    #[error("frame of {len} bytes is shorter than its {FRAME_HEADER_LEN}-byte header")]
    TooShort {
        /// The length received.
        len: usize,
    },
    /// The version octet is not [`FRAME_VERSION`].
    #[error("unknown frame version {version}")]
    UnknownVersion {
        /// The version octet received.
        version: u8,
    },
    /// The kind octet is not a known [`FrameKind`].
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The kind octet received.
        kind: u8,
    },
    /// The payload is larger than [`MAX_PAYLOAD_LEN`].
    #[error("payload of {len} bytes exceeds the limit of {MAX_PAYLOAD_LEN}")]
    PayloadTooLarge {
        /// The payload length (declared or given).
        len: usize,
    },
    /// The declared payload length runs past the end of the frame.
    #[error("declared payload of {declared} bytes but only {available} follow the header")]
    TruncatedPayload {
        /// The declared payload length.
        declared: usize,
        /// Bytes present after the header.
        available: usize,
    },
    /// The frame's total length is not the bucket size of its content.
    #[error("frame length {len} is not the bucket length {expected}")]
    BadPaddingLength {
        /// The frame length received.
        len: usize,
        /// The bucket length expected for its content.
        expected: usize,
    },
    /// A padding byte is not zero.
    #[error("non-zero padding byte")]
    NonZeroPadding,
}

/// A Kith frame: a payload and what it is. Padding is added by [`Frame::encode`] and
/// checked and removed by [`Frame::decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is.
    pub kind: FrameKind,
    /// The payload (for [`FrameKind::Mls`], a serialized `MLSMessage`).
    pub payload: Vec<u8>,
}

impl Frame {
    /// Encodes the frame, padded to its bucket size.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let len = self.payload.len();
        let declared = u32::try_from(len)
            .ok()
            .filter(|_| len <= MAX_PAYLOAD_LEN)
            .ok_or(FrameError::PayloadTooLarge { len })?;
        let content_len = FRAME_HEADER_LEN + len;
        let mut out = Vec::with_capacity(bucket_len(content_len));
        out.push(FRAME_VERSION);
        out.push(self.kind.to_u8());
        out.extend_from_slice(&declared.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.resize(bucket_len(content_len), 0);
        Ok(out)
    }

    /// Decodes a frame, checking version, kind, length, and that the padding is all zero
    /// and exactly fills the bucket.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let (header, rest) = bytes
            .split_first_chunk::<FRAME_HEADER_LEN>()
            .ok_or(FrameError::TooShort { len: bytes.len() })?;
        let [version, kind, l0, l1, l2, l3] = *header;
        if version != FRAME_VERSION {
            return Err(FrameError::UnknownVersion { version });
        }
        let kind = FrameKind::from_u8(kind).ok_or(FrameError::UnknownKind { kind })?;
        let declared = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        if declared > MAX_PAYLOAD_LEN {
            return Err(FrameError::PayloadTooLarge { len: declared });
        }
        if declared > rest.len() {
            return Err(FrameError::TruncatedPayload {
                declared,
                available: rest.len(),
            });
        }
        let expected = bucket_len(FRAME_HEADER_LEN + declared);
        if bytes.len() != expected {
            return Err(FrameError::BadPaddingLength {
                len: bytes.len(),
                expected,
            });
        }
        let (payload, padding) = rest.split_at(declared);
        if padding.iter().any(|b| *b != 0) {
            return Err(FrameError::NonZeroPadding);
        }
        Ok(Frame {
            kind,
            payload: payload.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::padding::is_bucket_len;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = FrameKind> {
        prop_oneof![
            Just(FrameKind::Mls),
            Just(FrameKind::Handshake),
            Just(FrameKind::Control)
        ]
    }

    #[test]
    fn layout_is_version_kind_length_payload_zeros() {
        let frame = Frame {
            kind: FrameKind::Handshake,
            payload: b"abc".to_vec(),
        };
        let bytes = frame.encode().expect("small payload");
        assert_eq!(&bytes[..9], &[1, 2, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(bytes.len(), 512);
        assert!(bytes[9..].iter().all(|b| *b == 0));
    }

    #[test]
    fn decode_rejects_each_kind_of_damage() {
        let good = Frame {
            kind: FrameKind::Mls,
            payload: vec![7; 40],
        }
        .encode()
        .expect("small payload");
        assert!(Frame::decode(&good).is_ok());
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(
            Frame::decode(&v),
            Err(FrameError::UnknownVersion { version: 2 })
        );
        let mut k = good.clone();
        k[1] = 9;
        assert_eq!(Frame::decode(&k), Err(FrameError::UnknownKind { kind: 9 }));
        let mut p = good.clone();
        p[500] = 1;
        assert_eq!(Frame::decode(&p), Err(FrameError::NonZeroPadding));
        assert!(matches!(
            Frame::decode(&good[..511]),
            Err(FrameError::BadPaddingLength { .. })
        ));
        assert_eq!(
            Frame::decode(&good[..3]),
            Err(FrameError::TooShort { len: 3 })
        );
        let mut big = good;
        big[2] = 0x7f;
        assert!(matches!(
            Frame::decode(&big),
            Err(FrameError::PayloadTooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip_on_bucket_sizes(kind in kind(), payload in prop::collection::vec(any::<u8>(), 0..5000)) {
            let frame = Frame { kind, payload };
            let bytes = frame.encode().expect("payload under the limit");
            prop_assert!(is_bucket_len(bytes.len()));
            prop_assert_eq!(Frame::decode(&bytes), Ok(frame));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
            let _ = Frame::decode(&bytes);
        }
    }
}
