//! The subject layout. A channel name (printable ASCII that may hold `.`,
//! `*` and `>`) becomes ONE subject token: `_` and its base64url without
//! padding, so it is reversible and never splits or wildcards a subject
//! (the `_` keeps an empty string, an anonymous user, a valid token).
//!
//! ```text
//! <prefix>.h.<channel>      publications with history, as published (the stream's subjects)
//! <prefix>.c.<channel>.h    the same, republished by the stream once stored
//! <prefix>.c.<channel>.p    publications without history (core NATS)
//! <prefix>.c.<channel>.j|l  join / leave (core NATS)
//! <prefix>.n.all            heartbeats and broadcast control messages
//! <prefix>.n.<node id>      control messages to one node
//! <prefix>.s.<node id>      nobody's: a node's sync requests, answered "no responders"
//! ```
//!
//! Live delivery of history publications comes from the stream's
//! RePublish, never from the published message itself: core NATS hands a
//! publish to subscribers whether or not JetStream then stores it, so a
//! publish refused for a stale expected sequence, or dropped as a
//! duplicate, would otherwise reach them too (with an offset the retry
//! reuses). Republished messages are stored ones, in stream order.
//!
//! A node subscribes to `<prefix>.c.<channel>.*`: one subscription per
//! channel, whichever kinds of events it carries; and to `<prefix>.n.>`
//! for the cluster messages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Encodes any string as one subject token (and KV key token).
pub(crate) fn token(name: &str) -> String {
    let mut out = String::with_capacity(1 + name.len().div_ceil(3) * 4);
    out.push('_');
    URL_SAFE_NO_PAD.encode_string(name, &mut out);
    out
}

/// The string [`token`] encoded, if `token` is one.
#[cfg(test)]
pub(crate) fn untoken(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token.strip_prefix('_')?).ok()?;
    String::from_utf8(bytes).ok()
}

/// What a message on a channel subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A publication stored in history.
    History,
    /// A publication without history.
    Live,
    /// A client joined.
    Join,
    /// A client left.
    Leave,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::History => "h",
            Kind::Live => "p",
            Kind::Join => "j",
            Kind::Leave => "l",
        }
    }

    /// The kind named by a subject's last token.
    pub(crate) fn of_subject(subject: &str) -> Option<Kind> {
        match subject.rsplit('.').next()? {
            "h" => Some(Kind::History),
            "p" => Some(Kind::Live),
            "j" => Some(Kind::Join),
            "l" => Some(Kind::Leave),
            _ => None,
        }
    }
}

/// Subject names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// The subject of `kind` events in `channel`.
    pub(crate) fn channel(&self, channel: &str, kind: Kind) -> String {
        format!("{}.c.{}.{}", self.prefix, token(channel), kind.suffix())
    }

    /// Every event of `channel` (what a node subscribes to).
    pub(crate) fn channel_all(&self, channel: &str) -> String {
        format!("{}.c.{}.*", self.prefix, token(channel))
    }

    /// Where a history publication of `channel` is published (stored).
    pub(crate) fn history(&self, channel: &str) -> String {
        format!("{}.h.{}", self.prefix, token(channel))
    }

    /// The history stream's subjects.
    pub(crate) fn history_filter(&self) -> String {
        format!("{}.h.*", self.prefix)
    }

    /// Where the stream republishes what it stored: the channel's
    /// history-kind live subject.
    pub(crate) fn republish_destination(&self) -> String {
        format!("{}.c.{{{{wildcard(1)}}}}.h", self.prefix)
    }

    /// Heartbeats and broadcasts.
    pub(crate) fn nodes_all(&self) -> String {
        format!("{}.n.all", self.prefix)
    }

    /// Everything on the node subjects (what every node subscribes to).
    pub(crate) fn nodes_wildcard(&self) -> String {
        format!("{}.n.>", self.prefix)
    }

    /// Control messages for one node.
    pub(crate) fn node(&self, id: &str) -> String {
        format!("{}.n.{}", self.prefix, token(id))
    }

    /// Where a node sends its sync requests: a subject no one subscribes
    /// to, so the server answers each with "no responders" (see
    /// `Shared::sync`). Under the prefix, so permissions that allow a
    /// node `<prefix>.>` allow it.
    pub(crate) fn sync(&self, id: &str) -> String {
        format!("{}.s.{}", self.prefix, token(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_become_one_reversible_token() {
        for name in ["chat:room.1", "a.*.>", "", "ns:ünï", "x y", "a_b-c=d"] {
            let t = token(name);
            assert!(!t.contains(['.', '*', '>', ' ']), "{t}");
            assert_eq!(untoken(&t).as_deref(), Some(name));
        }
        assert_ne!(token("a.b"), token("a_b"));
    }

    #[test]
    fn subjects_end_in_their_kind() {
        let s = Subjects::new("acme.clarion");
        let h = s.channel("chat:a.b", Kind::History);
        assert_eq!(h, format!("acme.clarion.c.{}.h", token("chat:a.b")));
        assert_eq!(Kind::of_subject(&h), Some(Kind::History));
        assert_eq!(
            Kind::of_subject(&s.channel("x", Kind::Leave)),
            Some(Kind::Leave)
        );
        assert_eq!(s.history_filter(), "acme.clarion.h.*");
        assert_eq!(s.sync("n1"), format!("acme.clarion.s.{}", token("n1")));
        assert_eq!(
            s.republish_destination(),
            "acme.clarion.c.{{wildcard(1)}}.h"
        );
    }
}
