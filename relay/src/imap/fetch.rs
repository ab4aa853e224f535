//! FETCH: which data items we serve and how a message's response is built.
use std::num::NonZeroU32;

use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};

use super::render;
use crate::store::MessageMeta;

/// One FETCH data item we serve.
#[derive(Debug, Clone)]
pub(crate) enum FetchItem {
    Uid,
    Flags,
    InternalDate,
    Size,
    Body {
        section: Option<Section<'static>>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    Rfc822,
    Rfc822Header,
    Rfc822Text,
}

impl FetchItem {
    pub(super) fn needs_body(&self) -> bool {
        matches!(
            self,
            Self::Body { .. } | Self::Rfc822 | Self::Rfc822Header | Self::Rfc822Text
        )
    }

    pub(super) fn marks_seen(&self) -> bool {
        matches!(
            self,
            Self::Body { peek: false, .. } | Self::Rfc822 | Self::Rfc822Text
        )
    }
}

/// The FETCH items asked for, or why we cannot serve them.
pub(super) fn fetch_items(
    names: MacroOrMessageDataItemNames<'static>,
) -> Result<Vec<FetchItem>, &'static str> {
    let names = match names {
        MacroOrMessageDataItemNames::Macro(Macro::Fast) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ],
        MacroOrMessageDataItemNames::Macro(_) => return Err("ENVELOPE is not supported"),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
    };
    names
        .into_iter()
        .map(|name| match name {
            MessageDataItemName::Uid => Ok(FetchItem::Uid),
            MessageDataItemName::Flags => Ok(FetchItem::Flags),
            MessageDataItemName::InternalDate => Ok(FetchItem::InternalDate),
            MessageDataItemName::Rfc822Size => Ok(FetchItem::Size),
            MessageDataItemName::Rfc822 => Ok(FetchItem::Rfc822),
            MessageDataItemName::Rfc822Header => Ok(FetchItem::Rfc822Header),
            MessageDataItemName::Rfc822Text => Ok(FetchItem::Rfc822Text),
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => Ok(FetchItem::Body {
                section,
                partial,
                peek,
            }),
            _ => Err("FETCH item not supported (no BODYSTRUCTURE, ENVELOPE or BINARY)"),
        })
        .collect()
}

/// The FETCH response items for one message, UID first for UID FETCH.
pub(super) fn fetch_response(
    items: &[FetchItem],
    meta: &MessageMeta,
    is_uid: bool,
    body: Option<&[u8]>,
) -> Vec<MessageDataItem<'static>> {
    let mut out = Vec::with_capacity(items.len() + 1);
    if is_uid && !items.iter().any(|i| matches!(i, FetchItem::Uid)) {
        out.push(MessageDataItem::Uid(render::non_zero(meta.uid)));
    }
    let body = body.unwrap_or_default();
    for item in items {
        let data = match item {
            FetchItem::Uid => MessageDataItem::Uid(render::non_zero(meta.uid)),
            FetchItem::Flags => MessageDataItem::Flags(render::flag_list(meta.flags)),
            FetchItem::InternalDate => match render::internal_date(meta.received_at) {
                Some(date) => MessageDataItem::InternalDate(date),
                None => continue,
            },
            FetchItem::Size => {
                MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            FetchItem::Rfc822 => MessageDataItem::Rfc822(render::literal(body.to_vec())),
            FetchItem::Rfc822Header => MessageDataItem::Rfc822Header(render::literal(
                render::split_header(body).0.to_vec(),
            )),
            FetchItem::Rfc822Text => {
                MessageDataItem::Rfc822Text(render::literal(render::split_header(body).1.to_vec()))
            }
            FetchItem::Body {
                section, partial, ..
            } => {
                let bytes = render::section_bytes(body, section.as_ref());
                let (origin, bytes) = match partial {
                    Some((start, length)) => {
                        let start_at = (*start as usize).min(bytes.len());
                        let end = start_at
                            .saturating_add(length.get() as usize)
                            .min(bytes.len());
                        (Some(*start), bytes[start_at..end].to_vec())
                    }
                    None => (None, bytes.into_owned()),
                };
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: render::literal(bytes),
                }
            }
        };
        out.push(data);
    }
    out
}
