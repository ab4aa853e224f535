//! The submission header filter and the header checks of a submitted message.
//!
//! Parsing is mail-parser's; the filter only cuts the byte ranges of the header fields it
//! drops out of the original message. Every other byte — kept headers, anything mail-parser
//! did not recognise as a header, the blank line and the whole body — is copied unchanged,
//! so nothing is ever re-encoded.
use mail_parser::{HeaderName, MessageParser};

/// Header fields removed from submitted messages: they would tell the relay (and every relay
/// after it) about the sender's machine, software or network.
const STRIPPED: &[&str] = &[
    "received",
    "x-mailer",
    "user-agent",
    "x-originating-ip",
    "x-forwarded-for",
    "x-remote-ip",
    "x-client-ip",
    "x-mailer-version",
    "x-user-agent",
    "x-originating-client",
    "x-source-ip",
    "x-apple-mail-remote-attachments",
    "organization",
];

/// Removes trace and client-identifying header fields (Received, X-Mailer, User-Agent,
/// X-Originating-IP and similar) from the header section of `message`; the rest of the
/// message is returned byte for byte.
pub fn strip_trace_headers(message: &[u8]) -> Vec<u8> {
    let Some(parsed) = MessageParser::new().parse_headers(message) else {
        return message.to_vec();
    };
    let Some(root) = parsed.parts.first() else {
        return message.to_vec();
    };
    let mut cuts: Vec<(usize, usize)> = root
        .headers
        .iter()
        .filter(|h| is_stripped(&h.name))
        .map(|h| (h.offset_field as usize, h.offset_end as usize))
        .filter(|(start, end)| start < end && *end <= message.len())
        .collect();
    if cuts.is_empty() {
        return message.to_vec();
    }
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(message.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            continue;
        }
        out.extend_from_slice(&message[at..start]);
        at = end;
    }
    out.extend_from_slice(&message[at..]);
    out
}

fn is_stripped(name: &HeaderName<'_>) -> bool {
    let name = name.as_str();
    STRIPPED.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// What the relay needs from a message's header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderFacts {
    /// The single address of the From field (lower-cased), if there is exactly one.
    pub(crate) from: Option<String>,
    /// The Message-ID, if any.
    pub(crate) message_id: Option<String>,
}

/// Reads the From address and the Message-ID of `message`.
pub(crate) fn header_facts(message: &[u8]) -> HeaderFacts {
    let Some(parsed) = MessageParser::new().parse_headers(message) else {
        return HeaderFacts {
            from: None,
            message_id: None,
        };
    };
    let from_fields = parsed
        .parts
        .first()
        .map(|root| {
            root.headers
                .iter()
                .filter(|h| h.name == HeaderName::From)
                .count()
        })
        .unwrap_or(0);
    let from = parsed
        .from()
        .filter(|_| from_fields == 1)
        .and_then(|addresses| {
            let mut all = addresses.iter();
            match (all.next(), all.next()) {
                (Some(only), None) => only.address().map(str::to_ascii_lowercase),
                _ => None,
            }
        });
    let message_id = parsed
        .message_id()
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    HeaderFacts { from, message_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--b\r\nReceived: not a header here\r\n\r\nX-Mailer: body\r\n--b--\r\n";

    fn message(headers: &str) -> Vec<u8> {
        let mut m = headers.as_bytes().to_vec();
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(BODY);
        m
    }

    #[test]
    fn trace_headers_are_cut_and_everything_else_is_kept_byte_for_byte() {
        let input = message(
            "Received: from laptop (1.2.3.4)\r\n\tby relay; Mon, 1 Jan 2024\r\n\
             From: <abc@x.test>\r\nX-Mailer: Foo 1.0\r\nSubject: [...]\r\n\
             user-agent: Bar\r\nX-Originating-IP: [1.2.3.4]\r\n\
             Content-Type: multipart/encrypted; boundary=\"b\";\r\n protocol=\"application/pgp-encrypted\"\r\n",
        );
        let expected = message(
            "From: <abc@x.test>\r\nSubject: [...]\r\n\
             Content-Type: multipart/encrypted; boundary=\"b\";\r\n protocol=\"application/pgp-encrypted\"\r\n",
        );
        assert_eq!(
            String::from_utf8_lossy(&strip_trace_headers(&input)),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn a_message_without_trace_headers_is_unchanged() {
        let input = message("From: <abc@x.test>\r\nSubject: hi\r\n");
        assert_eq!(strip_trace_headers(&input), input);
        assert_eq!(strip_trace_headers(b""), b"");
        assert_eq!(strip_trace_headers(b"\r\n\r\n"), b"\r\n\r\n");
    }

    #[test]
    fn bare_lf_headers_are_cut_too() {
        let input = b"X-Mailer: a\nFrom: <a@b.test>\n\nbody\n";
        assert_eq!(strip_trace_headers(input), b"From: <a@b.test>\n\nbody\n");
    }

    #[test]
    fn header_facts_read_from_and_message_id() {
        let facts = header_facts(&message(
            "From: Name <ABC@X.test>\r\nMessage-ID: <id1@x.test>\r\n",
        ));
        assert_eq!(facts.from.as_deref(), Some("abc@x.test"));
        assert_eq!(facts.message_id.as_deref(), Some("id1@x.test"));
    }

    #[test]
    fn two_from_addresses_or_fields_give_no_from() {
        let facts = header_facts(&message("From: <a@x.test>, <b@x.test>\r\n"));
        assert_eq!(facts.from, None);
        let facts = header_facts(&message("From: <a@x.test>\r\nFrom: <b@x.test>\r\n"));
        assert_eq!(facts.from, None);
        assert_eq!(header_facts(b"no headers at all").from, None);
    }
}
