//! Benchmark messages: PGP/MIME `multipart/encrypted` envelopes around real OpenPGP payloads.
//!
//! The payloads under `bench/payloads/` were made once with `gpg --symmetric --armor
//! --compress-algo none` (SKESK v4 + SEIPD v1) from random plaintexts of 256 B to 32 KiB and
//! are never altered: a message of the requested size takes the largest payload that fits
//! and fills the rest with the MIME preamble (the text before the first boundary, which every
//! MIME parser skips), so the OpenPGP packets stay valid.
use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::MessageParser;

/// The checked-in armored payloads, smallest first.
const PAYLOADS: [&str; 5] = [
    include_str!("../payloads/payload-256.asc"),
    include_str!("../payloads/payload-1024.asc"),
    include_str!("../payloads/payload-2048.asc"),
    include_str!("../payloads/payload-8192.asc"),
    include_str!("../payloads/payload-32768.asc"),
];

const BOUNDARY: &str = "kith-bench-7f3a1c9e";
const PREAMBLE: &str = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n";
const PAD_LINE: usize = 76;

/// Builds the benchmark messages of one run; the run id makes Message-IDs unique across runs
/// (relays de-duplicate by Message-ID).
#[derive(Debug, Clone)]
pub(crate) struct MessageBuilder {
    run: u64,
    domain: String,
    target_size: usize,
    payload: String,
}

impl MessageBuilder {
    /// A builder for messages of about `target_size` bytes, with ids under `domain`.
    pub(crate) fn new(run: u64, domain: &str, target_size: usize) -> Self {
        let with = |payload: &str| Self {
            run,
            domain: domain.to_owned(),
            target_size,
            payload: crlf(payload),
        };
        // The largest payload whose unpadded message still fits (probe with a long id);
        // the smallest when none does.
        let mut builder = with(PAYLOADS[0]);
        for payload in &PAYLOADS[1..] {
            let candidate = with(payload);
            if candidate.unpadded(u64::MAX).len() > target_size {
                break;
            }
            builder = candidate;
        }
        builder
    }

    /// The Message-ID (without angle brackets) of message `seq`.
    pub(crate) fn message_id(&self, seq: u64) -> String {
        format!("kb{:016x}.{seq}@{}", self.run, self.domain)
    }

    /// Message `seq` from `from`, padded to the target size when the target allows it.
    pub(crate) fn build(&self, from: &str, seq: u64) -> Vec<u8> {
        let (head, tail) = self.parts(from, seq);
        let pad = self.target_size.saturating_sub(head.len() + tail.len());
        let mut out = Vec::with_capacity(self.target_size.max(head.len() + tail.len()));
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(padding(pad).as_bytes());
        out.extend_from_slice(tail.as_bytes());
        out
    }

    /// The sequence number of a message built by this run, read from its Message-ID.
    pub(crate) fn sequence_of(&self, message: &[u8]) -> Option<u64> {
        let parsed = MessageParser::default().parse_headers(message)?;
        let id = parsed.message_id()?;
        let prefix = format!("kb{:016x}.", self.run);
        let rest = id.strip_prefix(prefix.as_str())?;
        let digits = rest.split('@').next()?;
        digits.parse().ok()
    }

    fn unpadded(&self, seq: u64) -> Vec<u8> {
        let (head, tail) = self.parts("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx@x", seq);
        [head.as_bytes(), tail.as_bytes()].concat()
    }

    /// Everything before the padding, and everything after it.
    fn parts(&self, from: &str, seq: u64) -> (String, String) {
        let head = format!(
            "From: <{from}>\r\nTo: undisclosed-recipients:;\r\nSubject: [...]\r\n\
             Date: {date}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n \
             boundary=\"{BOUNDARY}\"\r\n\r\n{PREAMBLE}",
            date = coarse_date(SystemTime::now()),
            id = self.message_id(seq),
        );
        let tail = format!(
            "\r\n--{BOUNDARY}\r\nContent-Type: application/pgp-encrypted\r\n\
             Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
             --{BOUNDARY}\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
             Content-Description: OpenPGP encrypted message\r\n\
             Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n{payload}\r\n\
             --{BOUNDARY}--\r\n",
            payload = self.payload.trim_end(),
        );
        (head, tail)
    }
}

/// Preamble lines of `x` totalling exactly `n` bytes (CRLF included); one byte short when
/// `n` is 1, which no line can fill.
fn padding(n: usize) -> String {
    let line = PAD_LINE + 2;
    let mut out = String::with_capacity(n);
    let (full, rest) = (n / line, n % line);
    for i in 0..full {
        let extra = usize::from(i + 1 == full && rest == 1);
        out.push_str(&"x".repeat(PAD_LINE + extra));
        out.push_str("\r\n");
    }
    if rest >= 2 {
        out.push_str(&"x".repeat(rest - 2));
        out.push_str("\r\n");
    }
    out
}

fn crlf(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\r\n") + "\r\n"
}

/// RFC 5322 date, truncated to the minute (a coarse Date, as Kith clients send).
fn coarse_date(now: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil-from-days (Howard Hinnant), valid for every date after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:00 +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use mail_parser::{MimeHeaders, PartType};

    use super::*;

    const FROM: &str = "abcdefghi@example.org";

    #[test]
    fn message_has_the_requested_size() {
        for size in [1536, 4096, 4097, 10_000, 65_536] {
            let builder = MessageBuilder::new(7, "example.org", size);
            assert_eq!(builder.build(FROM, 123_456).len(), size, "target {size}");
        }
    }

    #[test]
    fn too_small_a_target_gives_the_smallest_whole_message() {
        let builder = MessageBuilder::new(7, "example.org", 100);
        let message = builder.build(FROM, 1);
        assert!(message.len() > 100);
        assert!(message.windows(13).any(|w| w == b"-----END PGP "));
    }

    #[test]
    fn message_is_pgp_mime_with_an_untouched_payload() {
        let builder = MessageBuilder::new(7, "example.org", 4096);
        let message = builder.build(FROM, 42);
        let parsed = MessageParser::default().parse(&message).expect("parses");
        let ct = parsed.content_type().expect("has a content type");
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("encrypted"));
        assert_eq!(ct.attribute("protocol"), Some("application/pgp-encrypted"));
        let PartType::Multipart(children) = &parsed.root_part().body else {
            panic!("root is not multipart");
        };
        assert_eq!(children.len(), 2);
        let version = parsed.part(children[0]).expect("version part");
        assert!(version.is_content_type("application", "pgp-encrypted"));
        assert_eq!(
            std::str::from_utf8(version.contents()).map(str::trim),
            Ok("Version: 1")
        );
        let data = parsed.part(children[1]).expect("data part");
        assert!(data.is_content_type("application", "octet-stream"));
        let armored = std::str::from_utf8(data.contents()).expect("ascii armor");
        let original = PAYLOADS
            .iter()
            .find(|p| crlf(p).trim_end() == armored.trim_end());
        assert!(
            original.is_some(),
            "payload differs from every checked-in one"
        );
        assert_eq!(parsed.from().and_then(|f| f.first()?.address()), Some(FROM));
    }

    #[test]
    fn sequence_round_trips_through_the_message_id() {
        let builder = MessageBuilder::new(0xfeed, "example.org", 4096);
        let message = builder.build(FROM, 987_654_321);
        assert_eq!(builder.sequence_of(&message), Some(987_654_321));
        let other_run = MessageBuilder::new(0xbeef, "example.org", 4096);
        assert_eq!(other_run.sequence_of(&message), None);
        assert_eq!(builder.sequence_of(b"Subject: x\r\n\r\nhi"), None);
    }

    #[test]
    fn ids_differ_per_sequence() {
        let builder = MessageBuilder::new(1, "example.org", 2048);
        assert_ne!(builder.message_id(1), builder.message_id(2));
    }

    #[test]
    fn padding_is_exact_except_for_one_byte() {
        for n in [0, 2, 77, 78, 79, 80, 156, 157, 1000] {
            assert_eq!(padding(n).len(), n, "n = {n}");
        }
        assert_eq!(padding(1).len(), 0);
        assert!(padding(500)
            .split("\r\n")
            .all(|l| l.bytes().all(|b| b == b'x')));
    }

    #[test]
    fn coarse_date_is_rfc5322() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_372_262);
        assert_eq!(coarse_date(t), "Sun, 22 Nov 2026 18:31:00 +0000");
        assert_eq!(coarse_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
    }
}
