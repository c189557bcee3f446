//! Key and pub/sub channel names. Every key of one channel carries the
//! hash tag `{channel}`, so on Redis Cluster they share a slot (a script
//! may touch them together) and the channel's sharded pub/sub channel is
//! in that slot too.
//!
//! | name | type | content |
//! |---|---|---|
//! | `<p>.stream.{ch}` | stream | publications; entry id `<offset>-0`, fields `t` (expiry, ms) and `d` (the publication, JSON) |
//! | `<p>.meta.{ch}` | hash | `e` stored epoch, `s` top offset |
//! | `<p>.result.{ch}.<key>` | hash | an idempotent publish's `o` offset and `e` stored epoch |
//! | `<p>.presence.data.{ch}` | hash | client id → `<len>:<user><ClientInfo JSON>` |
//! | `<p>.presence.expiry.{ch}` | sorted set | client id → expiry (ms) |
//! | `<p>.presence.users.{ch}` | hash | user id → its clients in the channel |
//! | `<p>.pub.{ch}` | pub/sub | publications, joins and leaves |
//! | `<p>.control` | pub/sub | heartbeats and broadcast control (shard 0) |
//! | `<p>.node.<id>` | pub/sub | control for one node (shard 0) |
//!
//! A channel name containing `}` ends its hash tag early, but every key of
//! that channel still has the same tag (all of them are `…{` + name), so
//! the slot is shared all the same.

/// Builds the names for one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    pub_prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            pub_prefix: format!("{prefix}.pub.{{"),
        }
    }

    fn tagged(&self, kind: &str, channel: &str) -> String {
        format!("{}.{kind}.{{{channel}}}", self.prefix)
    }

    pub(crate) fn stream(&self, channel: &str) -> String {
        self.tagged("stream", channel)
    }

    pub(crate) fn meta(&self, channel: &str) -> String {
        self.tagged("meta", channel)
    }

    pub(crate) fn result(&self, channel: &str, key: &str) -> String {
        format!("{}.{key}", self.tagged("result", channel))
    }

    /// Presence keys: data, expiry, users.
    pub(crate) fn presence(&self, channel: &str) -> [String; 3] {
        [
            self.tagged("presence.data", channel),
            self.tagged("presence.expiry", channel),
            self.tagged("presence.users", channel),
        ]
    }

    pub(crate) fn publications(&self, channel: &str) -> String {
        format!("{}{channel}}}", self.pub_prefix)
    }

    /// The Clarion channel of a `publications` pub/sub channel.
    pub(crate) fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        pubsub.strip_prefix(&self.pub_prefix)?.strip_suffix('}')
    }

    pub(crate) fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }

    pub(crate) fn node(&self, id: &str) -> String {
        format!("{}.node.{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_channel_tag() {
        let k = Keys::new("clarion");
        assert_eq!(k.stream("chat:a"), "clarion.stream.{chat:a}");
        assert_eq!(k.result("chat:a", "k1"), "clarion.result.{chat:a}.k1");
        assert_eq!(k.presence("c")[1], "clarion.presence.expiry.{c}");
        let pubsub = k.publications("chat:}odd");
        assert_eq!(pubsub, "clarion.pub.{chat:}odd}");
        assert_eq!(k.channel_of(&pubsub), Some("chat:}odd"));
        assert_eq!(k.channel_of("clarion.control"), None);
    }
}
