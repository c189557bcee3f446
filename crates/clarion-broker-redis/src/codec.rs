//! What goes into Redis: a publication's body (JSON of data and info; the
//! offset is the stream entry id) and the messages on a channel's pub/sub
//! channel: `p<offset>:<epoch>:<body>` (offset and epoch empty without
//! history, written by the publish script), `j<ClientInfo JSON>` and
//! `l<ClientInfo JSON>`.

use clarion_hub::BrokerError;
use clarion_wire::{ClientInfo, Publication};

/// A decoded message of a channel's pub/sub channel.
#[derive(Debug, PartialEq)]
pub(crate) enum ChannelMessage {
    Publication(Publication, Option<String>),
    Join(ClientInfo),
    Leave(ClientInfo),
}

/// The stored and published body of a publication (its offset left out).
pub(crate) fn encode_body(publication: &Publication) -> Result<Vec<u8>, BrokerError> {
    serde_json::to_vec(publication)
        .map_err(|e| BrokerError::invalid(format!("publication not serialisable: {e}")))
}

/// A body read back, with its offset.
pub(crate) fn decode_body(body: &[u8], offset: Option<u64>) -> Option<Publication> {
    let mut publication: Publication = serde_json::from_slice(body).ok()?;
    publication.offset = offset;
    Some(publication)
}

/// The offset in a stream entry id `<offset>-0`.
pub(crate) fn offset_of_id(id: &str) -> Option<u64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

pub(crate) fn encode_presence(join: bool, info: &ClientInfo) -> Vec<u8> {
    let mut out = vec![if join { b'j' } else { b'l' }];
    // A ClientInfo is strings and raw JSON: serialising it cannot fail.
    out.extend(serde_json::to_vec(info).unwrap_or_default());
    out
}

/// Decodes a channel message; `None` for anything malformed.
pub(crate) fn decode_message(message: &[u8]) -> Option<ChannelMessage> {
    let (&tag, rest) = message.split_first()?;
    match tag {
        b'p' => {
            let (offset, rest) = split_at_colon(rest)?;
            let (epoch, body) = split_at_colon(rest)?;
            let offset = match offset {
                b"" => None,
                digits => Some(std::str::from_utf8(digits).ok()?.parse().ok()?),
            };
            let epoch = match epoch {
                b"" => None,
                text => Some(std::str::from_utf8(text).ok()?.to_owned()),
            };
            let publication = decode_body(body, offset)?;
            Some(ChannelMessage::Publication(publication, epoch))
        }
        b'j' => serde_json::from_slice(rest).ok().map(ChannelMessage::Join),
        b'l' => serde_json::from_slice(rest).ok().map(ChannelMessage::Leave),
        _ => None,
    }
}

fn split_at_colon(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == b':')?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

/// A stored presence value `<len>:<user><ClientInfo JSON>` → the info.
pub(crate) fn decode_presence_value(value: &[u8]) -> Option<ClientInfo> {
    let (len, rest) = split_at_colon(value)?;
    let len: usize = std::str::from_utf8(len).ok()?.parse().ok()?;
    serde_json::from_slice(rest.get(len..)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clarion_wire::Data;

    #[test]
    fn messages_round_trip() {
        let publication = Publication {
            offset: None,
            data: Data::from_json(r#"{"a":"b:c"}"#).unwrap(),
            info: None,
        };
        let body = encode_body(&publication).unwrap();
        let mut message = b"p12:e1-g1:".to_vec();
        message.extend(&body);
        let with_offset = Publication {
            offset: Some(12),
            ..publication.clone()
        };
        assert_eq!(
            decode_message(&message),
            Some(ChannelMessage::Publication(
                with_offset,
                Some("e1-g1".into())
            ))
        );
        let mut live = b"p::".to_vec();
        live.extend(&body);
        let live = decode_message(&live);
        assert_eq!(live, Some(ChannelMessage::Publication(publication, None)));
        let info = ClientInfo {
            client: "c".into(),
            user: "u".into(),
            info: None,
            chan_info: None,
        };
        let join = decode_message(&encode_presence(true, &info));
        assert_eq!(join, Some(ChannelMessage::Join(info.clone())));
        let stored = format!("1:u{}", serde_json::to_string(&info).unwrap());
        assert_eq!(decode_presence_value(stored.as_bytes()), Some(info));
        assert_eq!(offset_of_id("42-0"), Some(42));
        assert_eq!(decode_message(b"x"), None);
    }
}
