//! Redis errors as [`BrokerError`]s: can't reach it (temporary) versus it
//! said no (not).

use clarion_hub::BrokerError;
use redis::{ErrorKind, RedisError};

/// Whether `e` means the connection is unusable (drop it and reconnect).
pub(crate) fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        // A replica that was a master: reconnect (DNS or a proxy may now
        // point at the new master) and re-read the generation.
        || e.kind() == ErrorKind::ReadOnly
}

/// Maps a Redis error: unreachable, loading, failing over or busy is
/// `Unavailable`; anything the server refused (script errors, OOM, wrong
/// types) is `Refused`.
pub(crate) fn from_redis(e: RedisError) -> BrokerError {
    let temporary = breaks_connection(&e)
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
        )
        || e.code() == Some("BUSY");
    if temporary {
        BrokerError::unavailable(format!("redis: {e}"))
    } else {
        BrokerError::refused(format!("redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_is_temporary_and_server_refusals_are_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(from_redis(RedisError::from(io)).is_temporary());
        let loading = RedisError::from((ErrorKind::BusyLoadingError, "LOADING"));
        assert!(from_redis(loading).is_temporary());
        let script = RedisError::from((ErrorKind::ResponseError, "ERR user_script:1"));
        assert!(!from_redis(script).is_temporary());
    }
}
