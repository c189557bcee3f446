//! Values shared by commands, replies and pushes: application data kept as
//! JSON text, client info and stream positions.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Application data: any JSON value, kept as the (validated) JSON text it
/// arrived as, so it is never re-encoded on its way to subscribers. Cheap
/// to clone (shared).
#[derive(Clone)]
pub struct Data(Arc<RawValue>);

impl Data {
    /// Parses `json` (must be one valid JSON value).
    pub fn from_json(json: &str) -> Result<Data, serde_json::Error> {
        let raw = RawValue::from_string(json.to_owned())?;
        Ok(Data(Arc::from(raw)))
    }

    /// Encodes any serializable value.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Data, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        Ok(Data(Arc::from(raw)))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Decodes the JSON into `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }

    /// The length of the JSON text in bytes.
    pub fn len(&self) -> usize {
        self.get().len()
    }

    /// Whether the JSON text is empty (never true for a parsed value).
    pub fn is_empty(&self) -> bool {
        self.get().is_empty()
    }

    /// How deeply arrays and objects nest: 0 for a scalar, 1 for `[1]`
    /// or `{}`, 2 for `{"a":[]}`. One pass over the text, no recursion, so
    /// it is safe on any input (the server refuses data nested deeper than
    /// its limit, which JSON parsers with recursion limits could not read).
    pub fn depth(&self) -> usize {
        json_depth(self.get().as_bytes())
    }
}

/// The nesting depth of valid JSON text (see [`Data::depth`]).
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

impl PartialEq for Data {
    /// Compares the JSON text (so `{"a":1}` and `{ "a": 1 }` differ).
    fn eq(&self, other: &Data) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Data {}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Data({})", self.get())
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| Data(Arc::from(raw)))
    }
}

/// Who a client is, as seen by others: in presence, join/leave pushes and
/// a publication's `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The connection's client id (unique per session).
    pub client: String,
    /// The user id from the connection token (`""` for anonymous).
    pub user: String,
    /// Connection info from the token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Data>,
    /// Channel info from the subscription token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<Data>,
}

/// A place in a channel's stream: the offset of the last publication seen
/// and the epoch of the stream it belongs to. Offsets increase by one per
/// publication; a new epoch means a new stream (offsets restart).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The offset of the last publication (0 for an empty stream).
    pub offset: u64,
    /// The stream's epoch, an opaque string.
    pub epoch: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keeps_its_text() {
        let d: Data = serde_json::from_str(r#"{"text": "hi", "n": [1, 2]}"#).unwrap();
        assert_eq!(d.get(), r#"{"text": "hi", "n": [1, 2]}"#);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"text": "hi", "n": [1, 2]}"#
        );
        assert!(Data::from_json("{").is_err());
        assert_eq!(Data::from_value(&[1, 2]).unwrap().get(), "[1,2]");
    }

    #[test]
    fn depth_counts_nesting_outside_strings() {
        let depth = |json: &str| Data::from_json(json).unwrap().depth();
        assert_eq!(depth("1"), 0);
        assert_eq!(depth(r#""[[[""#), 0);
        assert_eq!(depth("[]"), 1);
        assert_eq!(depth(r#"{"a":[1,{"b":"]]\"[{"}],"c":{}}"#), 3);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(depth(&deep), 200);
    }

    #[test]
    fn client_info_omits_absent_fields() {
        let info = ClientInfo {
            client: "c1".into(),
            user: "u1".into(),
            info: None,
            chan_info: None,
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"client":"c1","user":"u1"}"#
        );
    }
}
