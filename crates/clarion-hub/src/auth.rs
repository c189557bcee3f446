//! Auth decisions the hub delegates: verifying subscription tokens and
//! connection-token refreshes. Connection tokens are verified by the server
//! before [`Hub::connect`](crate::Hub::connect); the hub takes the result
//! as [`Credentials`].

use std::time::Duration;

use clarion_wire::{Data, ErrorCode, ReplyError};

/// Who a session is, from an already-verified connection token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credentials {
    /// The user id (`sub`); empty for an anonymous session.
    pub user: String,
    /// Connection info (`info` claim), shown in presence and join/leave.
    pub info: Option<Data>,
    /// Channels to subscribe the session to on connect (`channels` claim);
    /// the token's grant stands in for namespace permission checks.
    pub channels: Vec<String>,
    /// Time until the token expires, if it does (sent as `ttl`).
    pub ttl: Option<Duration>,
}

/// A subscription token to check.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionCheck<'a> {
    /// The session's client id.
    pub client: &'a str,
    /// The session's user id.
    pub user: &'a str,
    /// The channel being subscribed to.
    pub channel: &'a str,
    /// The token the client sent.
    pub token: &'a str,
}

/// What a valid subscription token grants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionGrant {
    /// Channel info, shown as `chan_info` in presence and join/leave.
    pub info: Option<Data>,
    /// Time until the token expires, if it does: the subscription then
    /// ends with `unsubscribe` 2501 unless the client sends `sub_refresh`.
    pub ttl: Option<Duration>,
}

/// A refresh token to check.
#[derive(Debug, Clone, Copy)]
pub struct RefreshCheck<'a> {
    /// The session's client id.
    pub client: &'a str,
    /// The session's user id (the new token must name the same user).
    pub user: &'a str,
    /// The new connection token.
    pub token: &'a str,
}

/// Verifies tokens for the hub (the server plugs in JWT verification).
///
/// Return [`ErrorCode::Unauthorized`] for an invalid token and
/// [`ErrorCode::TokenExpired`] for an expired one; the error goes to the
/// client as the command's error reply.
pub trait TokenVerifier: Send + Sync + 'static {
    /// Checks a subscription token.
    fn verify_subscription(
        &self,
        check: &SubscriptionCheck<'_>,
    ) -> Result<SubscriptionGrant, ReplyError>;

    /// Checks a new connection token; returns its remaining lifetime.
    /// By default refresh is not available (501).
    fn verify_refresh(&self, check: &RefreshCheck<'_>) -> Result<Option<Duration>, ReplyError> {
        let _ = check;
        Err(ReplyError::new(ErrorCode::NotAvailable))
    }
}
