//! One Redis instance: its data connection (multiplexed, reconnected on
//! demand) and its *generation*, read on every connect.
//!
//! The generation names one lifetime of one dataset on one server: a hash
//! of `run_id` (new at every server start) and `master_replid` (new when a
//! replica is promoted). Epochs handed to clients are the stream's stored
//! epoch plus the generation of the server that holds it, so a restart
//! (even one that reloaded a snapshot missing the last writes) or a
//! failover (even to a replica that lags) changes every epoch on that
//! instance, and clients are told `recovered: false` instead of being
//! handed reused offsets. A flush loses the meta hashes, so it changes the
//! stored epochs itself.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clarion_hub::BrokerError;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisResult};

use crate::error::{breaks_connection, from_redis};
use crate::scripts::Scripts;
use crate::sharding::fnv1a64;

/// A connection and the generation of the server at its other end.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) generation: Arc<str>,
}

pub(crate) struct Shard {
    client: Client,
    live: Mutex<Option<Live>>,
    connecting: tokio::sync::Mutex<()>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only an `Option` swap happens under this lock: never half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shard {
    pub(crate) fn new(
        client: Client,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Shard {
        Shard {
            client,
            live: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            connect_timeout,
            command_timeout,
        }
    }

    pub(crate) fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.command_timeout)
    }

    /// The current connection, connecting (and reading the generation,
    /// loading the scripts) first if there is none.
    pub(crate) async fn live(&self, scripts: &Scripts) -> Result<Live, BrokerError> {
        if let Some(live) = lock(&self.live).clone() {
            return Ok(live);
        }
        // One connect at a time; the others wait for its result.
        let _connecting = self.connecting.lock().await;
        if let Some(live) = lock(&self.live).clone() {
            return Ok(live);
        }
        let live = self.connect(scripts).await.map_err(from_redis)?;
        *lock(&self.live) = Some(live.clone());
        Ok(live)
    }

    async fn connect(&self, scripts: &Scripts) -> RedisResult<Live> {
        let config = self.connection_config();
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let mut conn = connect.await?;
        let generation = read_generation(&mut conn).await?;
        scripts.load(&mut conn).await?;
        Ok(Live {
            conn,
            generation: generation.into(),
        })
    }

    /// Forgets `failed` if it is still the current connection, so the next
    /// call reconnects (and re-reads the generation).
    pub(crate) fn invalidate(&self, failed: &Live) {
        let mut live = lock(&self.live);
        if live
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(&l.generation, &failed.generation))
        {
            *live = None;
        }
    }

    /// Forgets the current connection, whatever it is.
    pub(crate) fn disconnect(&self) {
        *lock(&self.live) = None;
    }

    /// Maps a command's error, dropping the connection if it is broken.
    pub(crate) fn fail(&self, live: &Live, e: redis::RedisError) -> BrokerError {
        if breaks_connection(&e) {
            self.invalidate(live);
        }
        from_redis(e)
    }

    /// Re-reads the generation on the current connection (if any); returns
    /// true if it changed (a failover that kept the connection). A broken
    /// connection is dropped.
    pub(crate) async fn recheck_generation(&self) -> bool {
        let Some(mut live) = lock(&self.live).clone() else {
            return false;
        };
        match read_generation(&mut live.conn).await {
            Ok(now) if *now == *live.generation => false,
            Ok(now) => {
                let mut current = lock(&self.live);
                if let Some(cur) = current.as_mut() {
                    cur.generation = now.into();
                }
                true
            }
            Err(e) => {
                self.fail(&live, e);
                false
            }
        }
    }
}

/// The generation of the server at the other end of `conn`.
pub(crate) async fn read_generation(conn: &mut MultiplexedConnection) -> RedisResult<String> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .arg("replication")
        .query_async(conn)
        .await?;
    Ok(generation_from_info(&info))
}

/// 12 hex digits of FNV-1a over `run_id` and `master_replid`.
pub(crate) fn generation_from_info(info: &str) -> String {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
    };
    let identity = format!("{}/{}", field("run_id"), field("master_replid"));
    format!("{:012x}", fnv1a64(identity.as_bytes()) >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_follows_run_id_and_replid() {
        let info = |run: &str, repl: &str| {
            format!("# Server\r\nredis_version:7.0.15\r\nrun_id:{run}\r\n# Replication\r\nrole:master\r\nmaster_replid:{repl}\r\n")
        };
        let a = generation_from_info(&info("r1", "x"));
        assert_eq!(a.len(), 12);
        assert_eq!(a, generation_from_info(&info("r1", "x")));
        assert_ne!(a, generation_from_info(&info("r2", "x")), "a restart");
        assert_ne!(a, generation_from_info(&info("r1", "y")), "a promotion");
    }
}
