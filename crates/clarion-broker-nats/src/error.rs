//! From async-nats errors to [`BrokerError`]s: the connection or a timeout
//! is `Unavailable` (temporary, the hub answers 503); JetStream answering
//! with an API error is `Refused`.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::Client;
use clarion_hub::BrokerError;

/// A temporary failure while doing `what`.
pub(crate) fn unavailable(what: &str, err: impl Display) -> BrokerError {
    BrokerError::unavailable(format!("nats: {what}: {err}"))
}

/// JetStream refused `what`.
pub(crate) fn refused(what: &str, err: impl Display) -> BrokerError {
    BrokerError::refused(format!("nats: {what}: {err}"))
}

/// Fails fast while the client is not connected: async-nats would buffer
/// the command until it reconnects, and the contract wants a publish made
/// while NATS is down to fail (503), not to be queued in this node.
pub(crate) fn connected(client: &Client) -> Result<(), BrokerError> {
    match client.connection_state() {
        State::Connected => Ok(()),
        state => Err(BrokerError::unavailable(format!(
            "nats: not connected ({state:?})"
        ))),
    }
}

/// Runs `call` for at most `timeout`; running out of time is `Unavailable`.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(unavailable(what, format!("no answer within {timeout:?}"))),
    }
}

/// A JetStream failure: a timeout or lost connection is temporary,
/// anything JetStream answered is a refusal.
pub(crate) fn classify(what: &str, err: impl Display) -> BrokerError {
    let text = err.to_string();
    let temporary = [
        "timed out",
        "timeout",
        "no responders",
        "connection",
        "broken pipe",
    ];
    if temporary.iter().any(|t| text.to_lowercase().contains(t)) {
        unavailable(what, text)
    } else {
        refused(what, text)
    }
}
