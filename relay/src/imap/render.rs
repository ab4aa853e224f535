//! Building IMAP responses with imap-types and encoding them with imap-codec.
use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::encode::Encoder;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::{
    AString, IString, Literal, NString, QuotedChar, Tag, Text, Vec1,
};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{MessageDataItem, Section};
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagPerm};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{
    Capability, Code, CodeOther, CommandContinuationRequest, Data, Greeting, GreetingKind,
    Response, Status,
};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_codec::{GreetingCodec, ResponseCodec};

use crate::store::{Flags, MailboxStatus, MessageMeta};

/// A STATUS item the client asked for.
pub(super) type StatusItem = StatusDataItemName;

/// Encoded responses waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct Out {
    bytes: Vec<u8>,
}

/// Every constant response text we use is valid IMAP text.
fn text(text: &str) -> Text<'static> {
    Text::try_from(text.to_owned()).expect("response texts are non-empty and have no CR/LF")
}

impl Out {
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Takes the encoded bytes, leaving no allocation behind.
    pub(super) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    fn response(&mut self, response: &Response<'_>) {
        let encoded = ResponseCodec::default().encode(response);
        self.bytes.extend(encoded.dump());
    }

    fn status(&mut self, status: Status<'static>) {
        self.response(&Response::Status(status));
    }

    pub(super) fn greeting(&mut self, caps: &Vec1<Capability<'static>>) {
        let greeting = Greeting {
            kind: GreetingKind::Ok,
            code: Some(Code::Capability(caps.clone())),
            text: text("kith-relay ready"),
        };
        self.bytes
            .extend(GreetingCodec::default().encode(&greeting).dump());
    }

    pub(super) fn data(&mut self, data: Data<'static>) {
        self.response(&Response::Data(data));
    }

    pub(super) fn bye(&mut self, message: &str) {
        self.status(Status::bye(None, text(message)).expect("valid text"));
    }

    pub(super) fn ok(&mut self, tag: Tag<'static>, message: &str) {
        self.status(Status::ok(Some(tag), None, text(message)).expect("valid text"));
    }

    pub(super) fn ok_code(&mut self, tag: Tag<'static>, code: Code<'static>, message: &str) {
        self.status(Status::ok(Some(tag), Some(code), text(message)).expect("valid text"));
    }

    pub(super) fn untagged_ok(&mut self, code: Code<'static>, message: &str) {
        self.status(Status::ok(None, Some(code), text(message)).expect("valid text"));
    }

    pub(super) fn no(&mut self, tag: Tag<'static>, message: &str) {
        self.status(Status::no(Some(tag), None, text(message)).expect("valid text"));
    }

    pub(super) fn no_code(&mut self, tag: Tag<'static>, code: Code<'static>, message: &str) {
        self.status(Status::no(Some(tag), Some(code), text(message)).expect("valid text"));
    }

    /// A BAD, tagged when the tag could be read.
    pub(super) fn bad(
        &mut self,
        tag: Option<Tag<'static>>,
        code: Option<Code<'static>>,
        message: &str,
    ) {
        self.status(Status::bad(tag, code, text(message)).expect("valid text"));
    }

    pub(super) fn continuation(&mut self, message: &str) {
        let request = CommandContinuationRequest::basic(None, text(message))
            .expect("valid continuation text");
        self.response(&Response::CommandContinuationRequest(request));
    }

    /// `+ ` with nothing after it, as SASL wants.
    pub(super) fn empty_continuation(&mut self) {
        let request = CommandContinuationRequest::base64(Vec::new());
        self.response(&Response::CommandContinuationRequest(request));
    }

    /// LIST/LSUB: only INBOX exists; `""` asks for the hierarchy delimiter.
    pub(super) fn list(&mut self, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>, lsub: bool) {
        let delimiter = Some(QuotedChar::try_from('/').expect("'/' is a quoted char"));
        let pattern: &[u8] = match pattern {
            ListMailbox::Token(token) => token.as_ref(),
            ListMailbox::String(string) => string.as_ref(),
        };
        let reference: &[u8] = match reference {
            Mailbox::Inbox => b"INBOX",
            Mailbox::Other(other) => other.as_ref(),
        };
        let (items, mailbox) = if pattern.is_empty() {
            let root = Mailbox::try_from("").unwrap_or(Mailbox::Inbox);
            (
                vec![imap_codec::imap_types::flag::FlagNameAttribute::Noselect],
                root,
            )
        } else {
            let mut name = reference.to_vec();
            name.extend_from_slice(pattern);
            if !wildcard_matches(&name, b"INBOX") {
                return;
            }
            (Vec::new(), Mailbox::Inbox)
        };
        let data = if lsub {
            Data::Lsub {
                items,
                delimiter,
                mailbox,
            }
        } else {
            Data::List {
                items,
                delimiter,
                mailbox,
            }
        };
        self.data(data);
    }

    pub(super) fn status_data(&mut self, names: &[StatusItem], status: &MailboxStatus) {
        let items: Vec<StatusDataItem> = names
            .iter()
            .filter_map(|name| match name {
                StatusDataItemName::Messages => Some(StatusDataItem::Messages(status.exists)),
                StatusDataItemName::Recent => Some(StatusDataItem::Recent(0)),
                StatusDataItemName::UidNext => {
                    Some(StatusDataItem::UidNext(non_zero(status.uidnext)))
                }
                StatusDataItemName::UidValidity => {
                    Some(StatusDataItem::UidValidity(non_zero(status.uidvalidity)))
                }
                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(status.unseen)),
                _ => None,
            })
            .collect();
        self.data(Data::Status {
            mailbox: Mailbox::Inbox,
            items: Cow::Owned(items),
        });
    }

    /// The untagged responses SELECT and EXAMINE owe the client.
    pub(super) fn select_data(&mut self, status: &MailboxStatus, list: &[MessageMeta]) {
        let flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        let permanent = flags.iter().cloned().map(FlagPerm::Flag).collect();
        self.data(Data::Flags(flags));
        self.untagged_ok(Code::PermanentFlags(permanent), "Flags permitted");
        self.data(Data::Exists(list.len() as u32));
        self.data(Data::Recent(0));
        if let Some(first) = list.iter().position(|m| !m.flags.contains(Flags::SEEN)) {
            self.untagged_ok(Code::Unseen(non_zero(first as u32 + 1)), "First unseen");
        }
        self.untagged_ok(
            Code::UidValidity(non_zero(status.uidvalidity)),
            "UIDs valid",
        );
        self.untagged_ok(
            Code::UidNext(non_zero(status.uidnext)),
            "Predicted next UID",
        );
    }

    pub(super) fn exists(&mut self, count: usize) {
        self.data(Data::Exists(u32::try_from(count).unwrap_or(u32::MAX)));
    }

    pub(super) fn expunge(&mut self, seq: u32) {
        self.data(Data::Expunge(non_zero(seq)));
    }

    pub(super) fn fetch(&mut self, seq: u32, items: Vec<MessageDataItem<'static>>) {
        let Ok(items) = Vec1::try_from(items) else {
            return;
        };
        self.data(Data::Fetch {
            seq: non_zero(seq),
            items,
        });
    }

    pub(super) fn search(&mut self, ids: Vec<NonZeroU32>) {
        self.data(Data::Search(ids));
    }
}

/// `n` as a non-zero number (1 if it is 0, which our callers never pass).
pub(super) fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// A response code imap-types has no variant for (`AUTHENTICATIONFAILED`, ...).
pub(super) fn code_other(atom: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(atom.as_bytes()))
}

/// The capability list: before login it depends on whether authentication is possible yet.
pub(super) fn capabilities(
    offers_auth: bool,
    login_disabled: bool,
    offers_starttls: bool,
) -> Vec1<Capability<'static>> {
    let mut caps = vec![Capability::Imap4Rev1];
    if offers_starttls {
        caps.push(Capability::StartTls);
    }
    if offers_auth {
        caps.push(Capability::Auth(AuthMechanism::Plain));
        caps.push(Capability::SaslIr);
    }
    if login_disabled {
        caps.push(Capability::LoginDisabled);
    }
    caps.extend([Capability::Idle, Capability::UidPlus]);
    Vec1::try_from(caps).expect("the list starts with IMAP4rev1")
}

/// The STATUS items asked for.
pub(super) fn status_items(names: &[StatusDataItemName]) -> Vec<StatusItem> {
    names.to_vec()
}

/// Our flag bits as IMAP flags.
pub(super) fn flag_list(flags: Flags) -> Vec<FlagFetch<'static>> {
    [
        (Flags::SEEN, Flag::Seen),
        (Flags::ANSWERED, Flag::Answered),
        (Flags::FLAGGED, Flag::Flagged),
        (Flags::DELETED, Flag::Deleted),
        (Flags::DRAFT, Flag::Draft),
    ]
    .into_iter()
    .filter(|(bit, _)| flags.contains(*bit))
    .map(|(_, flag)| FlagFetch::Flag(flag))
    .collect()
}

/// IMAP flags as our bits; keywords are not stored and are ignored.
pub(super) fn flag_bits(flags: &[Flag<'_>]) -> Flags {
    flags.iter().fold(Flags::default(), |bits, flag| {
        bits.union(match flag {
            Flag::Seen => Flags::SEEN,
            Flag::Answered => Flags::ANSWERED,
            Flag::Flagged => Flags::FLAGGED,
            Flag::Deleted => Flags::DELETED,
            Flag::Draft => Flags::DRAFT,
            _ => Flags::default(),
        })
    })
}

/// INTERNALDATE from Unix seconds.
pub(super) fn internal_date(unix: i64) -> Option<DateTime> {
    let utc = chrono::DateTime::from_timestamp(unix, 0)?;
    DateTime::try_from(utc.fixed_offset()).ok()
}

/// A message body as an IMAP literal. Bodies are stored verbatim; the length prefix frames
/// them whatever bytes they hold.
pub(super) fn literal(bytes: Vec<u8>) -> NString<'static> {
    NString(Some(IString::Literal(Literal::unvalidated(bytes))))
}

/// The bytes of `section` of a single-part message (`None`: the whole message).
pub(super) fn section_bytes<'b>(body: &'b [u8], section: Option<&Section<'_>>) -> Cow<'b, [u8]> {
    let (header, text) = split_header(body);
    match section {
        None => Cow::Borrowed(body),
        Some(Section::Header(None)) => Cow::Borrowed(header),
        Some(Section::Text(None)) => Cow::Borrowed(text),
        Some(Section::Part(part)) if part.0.as_ref() == [NonZeroU32::MIN] => Cow::Borrowed(text),
        Some(Section::HeaderFields(None, names)) => {
            Cow::Owned(header_fields(header, names.as_ref(), true))
        }
        Some(Section::HeaderFieldsNot(None, names)) => {
            Cow::Owned(header_fields(header, names.as_ref(), false))
        }
        Some(_) => Cow::Borrowed(&[]),
    }
}

/// Splits a message after the blank line that ends its header (the header keeps it).
pub(super) fn split_header(body: &[u8]) -> (&[u8], &[u8]) {
    let end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| body.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(body.len());
    body.split_at(end)
}

/// The header lines (with their continuation lines) whose names are (or, with
/// `keep_named == false`, are not) among `names`, followed by the blank line.
fn header_fields(header: &[u8], names: &[AString<'_>], keep_named: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keeping = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        if !continues {
            let name = line.split(|b| *b == b':').next().unwrap_or_default();
            let named = names
                .iter()
                .any(|n| n.as_ref().eq_ignore_ascii_case(name.trim_ascii()));
            keeping = named == keep_named;
        }
        if keeping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// IMAP LIST matching: `*` matches anything, `%` anything but the delimiter; INBOX is
/// case-insensitive.
pub(super) fn wildcard_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard_matches(rest, &name[i..])),
        Some((b'%', rest)) => (0..=name.len())
            .take_while(|i| !name[..*i].contains(&b'/'))
            .any(|i| wildcard_matches(rest, &name[i..])),
        Some((c, rest)) => name
            .split_first()
            .is_some_and(|(n, name)| n.eq_ignore_ascii_case(c) && wildcard_matches(rest, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns_match_inbox_only_as_imap_says() {
        for yes in [
            &b"*"[..],
            b"%",
            b"INBOX",
            b"inbox",
            b"IN*",
            b"INBOX*",
            b"*X",
        ] {
            assert!(wildcard_matches(yes, b"INBOX"), "{yes:?}");
        }
        for no in [&b"INBOX/*x"[..], b"Sent", b"", b"INBOXX"] {
            assert!(!wildcard_matches(no, b"INBOX"), "{no:?}");
        }
    }

    #[test]
    fn header_fields_keep_continuations_and_end_with_a_blank_line() {
        let body = b"From: a\r\nSubject: x\r\n  y\r\nTo: b\r\n\r\nbody";
        let (header, text) = split_header(body);
        assert_eq!(text, b"body");
        let names = [AString::try_from("subject").unwrap()];
        assert_eq!(
            header_fields(header, &names, true),
            b"Subject: x\r\n  y\r\n\r\n"
        );
        assert_eq!(
            header_fields(header, &names, false),
            b"From: a\r\nTo: b\r\n\r\n"
        );
    }
}
