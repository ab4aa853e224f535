//! The relay's structural filter: is this message a well-formed encrypted envelope?
//!
//! The rule is chatmail filtermail's: the message is PGP/MIME `multipart/encrypted`, and its
//! OpenPGP payload is one or more PKESK (tag 1) / SKESK (tag 3) packets followed by exactly
//! one SEIPD packet (tag 18) that ends exactly at the end of the payload. MIME is parsed by
//! mail-parser, armor by sequoia's armor reader, packet headers by sequoia's header parser.
//! See PROTOCOL.md section 7.

use std::io::Read;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use sequoia_openpgp::armor::{Kind, Reader, ReaderMode};
use sequoia_openpgp::packet::header::BodyLength;
use sequoia_openpgp::packet::Header;
use sequoia_openpgp::parse::Parse;

use super::EnvelopeError;

const TAG_PKESK: u8 = 1;
const TAG_SKESK: u8 = 3;
const TAG_SEIPD: u8 = 18;

/// One top-level OpenPGP packet of an envelope, as a relay can see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketSummary {
    /// Byte offset of the packet in the de-armored payload.
    pub offset: usize,
    /// The packet tag (1 = PKESK, 3 = SKESK, 18 = SEIPD).
    pub tag: u8,
    /// The packet's version octet (the first body octet), if the body is not empty.
    pub version: Option<u8>,
    /// Length of the packet header (CTB and first length field).
    pub header_len: usize,
    /// Length of the packet body, without any partial-length octets.
    pub body_len: usize,
    /// Whether the body uses partial body lengths (chunked).
    pub is_partial: bool,
    /// Whether the header uses the legacy (pre-RFC 4880) format.
    pub is_legacy_format: bool,
}

/// Checks that `message` is a well-formed Kith (PGP/MIME) envelope, as a relay must.
///
/// Accepts only an RFC 5322 message whose top-level Content-Type is `multipart/encrypted;
/// protocol="application/pgp-encrypted"` holding exactly the two RFC 3156 parts, whose
/// armored OpenPGP payload is PKESK/SKESK packets then exactly one SEIPD (v1 or v2)
/// packet ending at the payload end. Never decrypts anything.
pub fn check_envelope(message: &[u8]) -> Result<(), EnvelopeError> {
    envelope_packets(message).map(|_| ())
}

/// Checks `message` like [`check_envelope`] and returns its packet list.
pub fn envelope_packets(message: &[u8]) -> Result<Vec<PacketSummary>, EnvelopeError> {
    envelope_layout(message).map(|layout| layout.packets)
}

/// The sizes and packets of a valid envelope: what a relay can see besides the headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeLayout {
    /// Length of the ASCII-armored OpenPGP part, as it appears in the MIME body.
    pub armored_len: usize,
    /// Length of the de-armored (binary) OpenPGP message.
    pub payload_len: usize,
    /// The top-level OpenPGP packets, in order.
    pub packets: Vec<PacketSummary>,
}

/// Checks `message` like [`check_envelope`] and returns its sizes and packets.
pub fn envelope_layout(message: &[u8]) -> Result<EnvelopeLayout, EnvelopeError> {
    let armored = pgp_part(message)?;
    let payload = dearmor(&armored)?;
    let packets = check_packets(&payload)?;
    Ok(EnvelopeLayout {
        armored_len: armored.len(),
        payload_len: payload.len(),
        packets,
    })
}

/// Finds the armored OpenPGP part of a PGP/MIME message, checking the MIME structure.
pub(crate) fn pgp_part(message: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let parsed = MessageParser::default()
        .parse(message)
        .ok_or(EnvelopeError::NotAMessage)?;
    let is_pgp_encrypted = parsed.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("encrypted"))
            && ct
                .attribute("protocol")
                .is_some_and(|p| p.eq_ignore_ascii_case("application/pgp-encrypted"))
    });
    if !is_pgp_encrypted {
        return Err(EnvelopeError::NotMultipartEncrypted);
    }
    let children = match &parsed.root_part().body {
        PartType::Multipart(children) => children,
        _ => return Err(EnvelopeError::NotMultipartEncrypted),
    };
    let part = |i: usize| children.get(i).and_then(|id| parsed.part(*id));
    let version = part(0).ok_or(EnvelopeError::MissingVersionPart)?;
    let version_ok = version.is_content_type("application", "pgp-encrypted")
        && std::str::from_utf8(version.contents()).is_ok_and(|t| t.trim() == "Version: 1");
    if !version_ok {
        return Err(EnvelopeError::MissingVersionPart);
    }
    let data = part(1).ok_or(EnvelopeError::MissingPgpPart)?;
    if !data.is_content_type("application", "octet-stream") {
        return Err(EnvelopeError::MissingPgpPart);
    }
    if children.len() != 2 {
        return Err(EnvelopeError::ExtraParts {
            count: children.len(),
        });
    }
    Ok(data.contents().to_vec())
}

/// Removes the ASCII armor; only a `PGP MESSAGE` block is accepted.
pub(crate) fn dearmor(armored: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut reader = Reader::from_bytes(armored, ReaderMode::Tolerant(Some(Kind::Message)));
    let mut payload = Vec::new();
    reader
        .read_to_end(&mut payload)
        .map_err(|e| EnvelopeError::BadArmor {
            reason: e.to_string(),
        })?;
    if payload.is_empty() {
        return Err(EnvelopeError::EmptyPayload);
    }
    Ok(payload)
}

/// Walks the top-level packets of a de-armored payload and applies the filtermail rule.
pub(crate) fn check_packets(payload: &[u8]) -> Result<Vec<PacketSummary>, EnvelopeError> {
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < payload.len() {
        let (summary, end) = frame_packet(payload, offset)?;
        let tag = summary.tag;
        packets.push(summary);
        match tag {
            TAG_PKESK | TAG_SKESK => offset = end,
            TAG_SEIPD => {
                return finish_at_seipd(packets, end, payload.len());
            }
            _ => return Err(EnvelopeError::UnexpectedPacket { tag, offset }),
        }
    }
    Err(EnvelopeError::MissingSeipd)
}

/// The checks once the SEIPD packet is reached: nothing after it, a session key before it.
fn finish_at_seipd(
    packets: Vec<PacketSummary>,
    end: usize,
    len: usize,
) -> Result<Vec<PacketSummary>, EnvelopeError> {
    if end != len {
        return Err(EnvelopeError::TrailingData { extra: len - end });
    }
    let seipd = packets
        .last()
        .expect("called right after pushing the SEIPD");
    match seipd.version {
        Some(1 | 2) => {}
        other => {
            return Err(EnvelopeError::UnsupportedSeipdVersion {
                version: other.unwrap_or(0),
            })
        }
    }
    if packets.len() < 2 {
        return Err(EnvelopeError::MissingSessionKeyPacket);
    }
    Ok(packets)
}

/// Frames the packet at `offset`: parses its header with sequoia and walks its body
/// (following partial-length chunks). Returns its summary and the offset of its end.
fn frame_packet(payload: &[u8], offset: usize) -> Result<(PacketSummary, usize), EnvelopeError> {
    let bad = |reason: &str| EnvelopeError::BadPacket {
        offset,
        reason: reason.to_owned(),
    };
    let rest = &payload[offset..];
    let header = Header::from_bytes(rest).map_err(|e| bad(&e.to_string()))?;
    let tag = u8::from(header.ctb().tag());
    let is_legacy_format = rest[0] & 0x40 == 0;
    let header_len = if is_legacy_format {
        legacy_length_octets(rest[0]) + 1
    } else {
        new_length_octets(*rest.get(1).ok_or_else(|| bad("truncated header"))?) + 1
    };
    let body_start = offset + header_len;
    let (body_len, end, is_partial) = match *header.length() {
        BodyLength::Full(n) => (n as usize, body_start + n as usize, false),
        BodyLength::Indeterminate => (payload.len() - body_start, payload.len(), false),
        BodyLength::Partial(first) => {
            let (len, end) = walk_partial_chunks(payload, body_start, first as usize)
                .ok_or_else(|| bad("truncated partial-length body"))?;
            (len, end, true)
        }
    };
    if end > payload.len() {
        return Err(bad("packet body extends past the end of the payload"));
    }
    let version = payload.get(body_start).copied().filter(|_| body_len > 0);
    let summary = PacketSummary {
        offset,
        tag,
        version,
        header_len,
        body_len,
        is_partial,
        is_legacy_format,
    };
    Ok((summary, end))
}

/// Number of length octets of a legacy-format header (RFC 9580 section 4.2.2).
fn legacy_length_octets(ctb: u8) -> usize {
    match ctb & 0x03 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 0,
    }
}

/// Number of octets of an OpenPGP-format length field, from its first octet (RFC 9580
/// section 4.2.1): one octet below 192, two below 224, five for 255, one for a partial
/// length.
fn new_length_octets(first: u8) -> usize {
    match first {
        0..=191 => 1,
        192..=223 => 2,
        255 => 5,
        _ => 1,
    }
}

/// Walks the chunks of a partial-length body that starts with a chunk of `first` bytes at
/// `start`. Returns the total body length (without length octets) and the body's end, or
/// `None` if the chunks run past the end of the payload.
fn walk_partial_chunks(payload: &[u8], start: usize, first: usize) -> Option<(usize, usize)> {
    let mut pos = start.checked_add(first)?;
    let mut total = first;
    loop {
        let octet = *payload.get(pos)?;
        let (len, octets) = match octet {
            0..=191 => (usize::from(octet), 1),
            192..=223 => {
                let second = usize::from(*payload.get(pos + 1)?);
                (((usize::from(octet) - 192) << 8) + second + 192, 2)
            }
            255 => {
                let bytes = payload.get(pos + 1..pos + 5)?;
                let len = u32::from_be_bytes(bytes.try_into().ok()?);
                (usize::try_from(len).ok()?, 5)
            }
            _ => {
                let len = 1usize << (octet & 0x1F);
                pos = pos.checked_add(1 + len)?;
                total = total.checked_add(len)?;
                continue;
            }
        };
        let end = pos.checked_add(octets + len)?;
        return (end <= payload.len()).then_some((total + len, end));
    }
}
