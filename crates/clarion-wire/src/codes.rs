//! Numbered codes with stable meanings: reply errors, disconnects and
//! server-side unsubscribes.
//!
//! Every code says whether the condition is temporary. For a reply error
//! that means "retrying the same command later may succeed"; for a
//! disconnect it means "reconnect (with backoff)"; for an unsubscribe it
//! means "subscribe again (with recovery)". Numbers never change meaning;
//! new codes are only ever added.

use serde::{Deserialize, Serialize};

/// Declares a `u16`-backed code enum with its name, text and temporary flag.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $num:literal, $text:literal, $temp:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every code, in numeric order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The number sent on the wire.
            pub fn as_u16(self) -> u16 {
                match self { $($name::$variant => $num,)* }
            }

            /// The code with this number, if it is one we know.
            pub fn from_u16(code: u16) -> Option<Self> {
                match code { $($num => Some($name::$variant),)* _ => None }
            }

            /// The default human-readable text.
            pub fn text(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Whether the condition is temporary (see the module docs).
            pub fn is_temporary(self) -> bool {
                match self { $($name::$variant => $temp,)* }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u16(self.as_u16())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = u16::deserialize(d)?;
                $name::from_u16(n).ok_or_else(|| {
                    serde::de::Error::custom(format_args!("unknown {} {n}", stringify!($name)))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} {}", self.as_u16(), self.text())
            }
        }
    };
}

codes! {
    /// The `code` of an error reply. Modelled on HTTP's families: 4xx is
    /// the client's doing (do not retry unchanged), 5xx the server's; 419
    /// and 429 are the temporary client-side ones.
    pub enum ErrorCode {
        /// The command is well-formed JSON but its params are not valid.
        BadRequest = 400, "bad request", false;
        /// The subscription token is invalid (bad signature, wrong channel or client).
        Unauthorized = 401, "unauthorized", false;
        /// Not allowed by the namespace's options (publish, presence, history, anonymous, token required).
        PermissionDenied = 403, "permission denied", false;
        /// No such namespace, or the channel name is invalid.
        UnknownChannel = 404, "unknown channel", false;
        /// The method is not part of this protocol version.
        MethodNotFound = 405, "method not found", false;
        /// The client is already subscribed to the channel.
        AlreadySubscribed = 409, "already subscribed", false;
        /// The command needs a subscription the client does not have.
        NotSubscribed = 410, "not subscribed", false;
        /// A limit was exceeded (subscriptions per client, history page size).
        LimitExceeded = 413, "limit exceeded", false;
        /// The token has expired: get a fresh one and retry.
        TokenExpired = 419, "token expired", true;
        /// Too many requests: retry later.
        TooManyRequests = 429, "too many requests", true;
        /// An internal error: retry later.
        Internal = 500, "internal error", true;
        /// The feature is off for this namespace (history, presence, refresh).
        NotAvailable = 501, "not available", false;
        /// The broker (history, presence, fan-out backend) is unavailable: retry later.
        Unavailable = 503, "unavailable", true;
    }
}

codes! {
    /// Why the server ends a connection. The number is also the WebSocket
    /// close code (private-use range 4000–4999): **4000–4499 mean
    /// "reconnect"**, **4500–4999 mean "do not reconnect"**, so a client
    /// can decide from the close code alone even if it never saw the
    /// `disconnect` push. [`DisconnectCode::Shutdown`] is the exception: it
    /// closes with 1001 (going away) so that any WebSocket client reconnects.
    pub enum DisconnectCode {
        /// The server is shutting down or restarting; reconnect elsewhere.
        Shutdown = 4000, "shutdown", true;
        /// The outgoing queue overflowed (the client reads too slowly). Reconnect and recover.
        SlowConsumer = 4001, "slow consumer", true;
        /// An internal error ended the session.
        Internal = 4002, "internal error", true;
        /// The connection token expired and was not refreshed.
        Expired = 4003, "expired", true;
        /// No ping or command arrived in time.
        Stale = 4004, "stale", true;
        /// The server asked the client to reconnect (server API).
        ForceReconnect = 4005, "force reconnect", true;
        /// The server lost the state needed to continue the stream; reconnect and recover.
        InsufficientState = 4006, "insufficient state", true;
        /// The client kept sending commands over its rate limit after `429` replies.
        TooManyRequests = 4008, "too many requests", true;
        /// A frame was not valid protocol (bad JSON, missing id, too many commands).
        BadRequest = 4500, "bad request", false;
        /// The connection token was missing or invalid.
        Unauthorized = 4501, "unauthorized", false;
        /// The server disconnected the client and asks it not to come back (server API, ban).
        ForceNoReconnect = 4502, "force disconnect", false;
        /// A frame exceeded the command size limit.
        MessageTooBig = 4503, "message too big", false;
        /// The client speaks a protocol version the server does not.
        UnsupportedProtocol = 4504, "unsupported protocol", false;
        /// Too many connections for this user or node.
        ConnectionLimit = 4505, "connection limit", false;
    }
}

impl DisconnectCode {
    /// The WebSocket close code to close the connection with.
    pub fn close_code(self) -> u16 {
        match self {
            DisconnectCode::Shutdown => 1001,
            other => other.as_u16(),
        }
    }

    /// Whether the client should reconnect, from a WebSocket close code
    /// alone: 4000–4499 and 1001/1006/1011/1012/1013 yes, 4500–4999 no.
    pub fn close_code_allows_reconnect(close_code: u16) -> bool {
        match close_code {
            4000..=4499 => true,
            4500..=4999 => false,
            1001 | 1006 | 1011 | 1012 | 1013 => true,
            _ => false,
        }
    }
}

codes! {
    /// Why the server ended one subscription (the `unsubscribe` push).
    pub enum UnsubscribeCode {
        /// Unsubscribed by the server API; do not resubscribe on your own.
        Server = 2000, "unsubscribed by server", false;
        /// The stream has a gap or a new epoch; resubscribe with recovery.
        InsufficientState = 2500, "insufficient state", true;
        /// The subscription token expired; resubscribe with a fresh token.
        Expired = 2501, "subscription expired", true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_are_unique() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u16(code.as_u16()), Some(*code));
        }
        for code in DisconnectCode::ALL {
            assert_eq!(DisconnectCode::from_u16(code.as_u16()), Some(*code));
        }
        for code in UnsubscribeCode::ALL {
            assert_eq!(UnsubscribeCode::from_u16(code.as_u16()), Some(*code));
        }
        assert_eq!(ErrorCode::from_u16(418), None);
    }

    #[test]
    fn disconnect_ranges_encode_reconnect() {
        for code in DisconnectCode::ALL {
            let close = code.close_code();
            assert_eq!(
                DisconnectCode::close_code_allows_reconnect(close),
                code.is_temporary(),
                "{code}"
            );
            assert!(close == 1001 || (4000..5000).contains(&close), "{code}");
        }
        assert_eq!(DisconnectCode::Shutdown.close_code(), 1001);
        assert_eq!(DisconnectCode::SlowConsumer.close_code(), 4001);
    }

    #[test]
    fn codes_serialize_as_numbers() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::PermissionDenied).unwrap(),
            "403"
        );
        let c: DisconnectCode = serde_json::from_str("4503").unwrap();
        assert_eq!(c, DisconnectCode::MessageTooBig);
        assert!(serde_json::from_str::<ErrorCode>("999").is_err());
    }
}
