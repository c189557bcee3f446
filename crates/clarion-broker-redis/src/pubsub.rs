//! Live delivery: one dedicated RESP3 connection per shard carrying this
//! node's subscriptions (one per channel per node, not per client), its
//! pushes decoded straight into the handler on the connection's reader
//! task, so one channel's messages are handled in order and never
//! concurrently. A supervisor task per shard notices a dropped connection
//! (a disconnect push, or a failed ping), reconnects with backoff,
//! resubscribes every channel, then calls `on_resync` for them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use clarion_hub::BrokerError;
use redis::aio::MultiplexedConnection;
use redis::{Client, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::Notify;

use crate::broker::Inner;
use crate::error::from_redis;

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Subscriptions sent per pipeline when resubscribing.
const RESUBSCRIBE_BATCH: usize = 1000;

/// One shard's subscription connection and the channels it carries.
pub(crate) struct Subscriber {
    index: usize,
    client: Client,
    channels: Mutex<HashSet<String>>,
    current: Mutex<Option<Current>>,
}

/// A connection and the signal that it went down.
#[derive(Clone)]
struct Current {
    conn: MultiplexedConnection,
    down: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Set inserts and `Option` swaps only: never half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subscriber {
    /// `client` must speak RESP3 (pushes on a multiplexed connection).
    pub(crate) fn new(index: usize, client: Client) -> Subscriber {
        Subscriber {
            index,
            client,
            channels: Mutex::default(),
            current: Mutex::default(),
        }
    }

    fn conn(&self) -> Option<MultiplexedConnection> {
        lock(&self.current).as_ref().map(|c| c.conn.clone())
    }

    /// The channels this node subscribed on this shard.
    pub(crate) fn channels(&self) -> Vec<String> {
        lock(&self.channels).iter().cloned().collect()
    }

    /// Drops the connection (shutdown); the supervisor then ends.
    pub(crate) fn close(&self) {
        if let Some(current) = lock(&self.current).take() {
            current.down.notify_one();
        }
    }

    /// Connects, subscribes every channel (and, on shard 0, the control
    /// channels); returns the channels subscribed.
    pub(crate) async fn connect(&self, inner: &Arc<Inner>) -> RedisResult<Vec<String>> {
        let down = Arc::new(Notify::new());
        let config = inner.shards[self.index]
            .connection_config()
            .set_push_sender(pushes(Arc::downgrade(inner), down.clone()));
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let mut conn = connect.await?;
        // Visible before resubscribing, so a concurrent `subscribe` is not lost.
        *lock(&self.current) = Some(Current {
            conn: conn.clone(),
            down,
        });
        let channels: Vec<String> = lock(&self.channels).iter().cloned().collect();
        let mut names: Vec<(bool, String)> = channels
            .iter()
            .map(|c| (inner.config.sharded_pubsub, inner.keys.publications(c)))
            .collect();
        if self.index == 0 {
            names.push((false, inner.keys.control()));
            names.push((false, inner.keys.node(&inner.identity.id)));
        }
        for batch in names.chunks(RESUBSCRIBE_BATCH) {
            let mut pipe = redis::pipe();
            for (sharded, name) in batch {
                // One channel per command: one reply per command.
                pipe.cmd(subscribe_command(*sharded)).arg(name).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        Ok(channels)
    }

    /// Adds `channel`; in effect when this returns `Ok`. Without a
    /// connection the channel is kept for the reconnect (which resyncs it).
    pub(crate) async fn subscribe(&self, inner: &Inner, channel: &str) -> Result<(), BrokerError> {
        lock(&self.channels).insert(channel.to_owned());
        let Some(mut conn) = self.conn() else {
            return Err(BrokerError::unavailable("redis: pub/sub connection down"));
        };
        let name = inner.keys.publications(channel);
        let mut cmd = redis::cmd(subscribe_command(inner.config.sharded_pubsub));
        cmd.arg(name);
        cmd.exec_async(&mut conn).await.map_err(from_redis)
    }

    /// Removes `channel`.
    pub(crate) async fn unsubscribe(
        &self,
        inner: &Inner,
        channel: &str,
    ) -> Result<(), BrokerError> {
        lock(&self.channels).remove(channel);
        let Some(mut conn) = self.conn() else {
            return Ok(());
        };
        let command = match inner.config.sharded_pubsub {
            true => "SUNSUBSCRIBE",
            false => "UNSUBSCRIBE",
        };
        let mut cmd = redis::cmd(command);
        cmd.arg(inner.keys.publications(channel));
        cmd.exec_async(&mut conn).await.map_err(from_redis)
    }

    /// Waits until the connection is down (or absent); `false` when the
    /// broker is gone or stopped.
    async fn wait_down(weak: &Weak<Inner>, index: usize) -> bool {
        loop {
            let (current, ping_every) = {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                if inner.is_stopped() {
                    return false;
                }
                let current = lock(&inner.subscribers[index].current).clone();
                (current, inner.config.heartbeat)
            };
            let Some(mut current) = current else {
                return true;
            };
            tokio::select! {
                _ = current.down.notified() => return true,
                _ = tokio::time::sleep(ping_every) => {
                    // A silently dead TCP connection only shows as a ping
                    // that times out.
                    let ping = redis::cmd("PING").exec_async(&mut current.conn).await;
                    if ping.is_err() {
                        return true;
                    }
                }
            }
        }
    }
}

fn subscribe_command(sharded: bool) -> &'static str {
    if sharded {
        "SSUBSCRIBE"
    } else {
        "SUBSCRIBE"
    }
}

/// The push sender of a subscription connection.
fn pushes(
    weak: Weak<Inner>,
    down: Arc<Notify>,
) -> impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static {
    move |push: PushInfo| {
        match push.kind {
            PushKind::Disconnection => down.notify_one(),
            PushKind::Message | PushKind::SMessage => {
                if let (Some(inner), [Value::BulkString(ch), Value::BulkString(msg)]) =
                    (weak.upgrade(), push.data.as_slice())
                {
                    inner.dispatch(ch, msg);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Keeps shard `index`'s subscription connection up until the broker is
/// dropped or shut down.
pub(crate) async fn supervise(weak: Weak<Inner>, index: usize) {
    let mut backoff = MIN_BACKOFF;
    while Subscriber::wait_down(&weak, index).await {
        let Some(inner) = weak.upgrade() else { return };
        let subscriber = &inner.subscribers[index];
        *lock(&subscriber.current) = None;
        match subscriber.connect(&inner).await {
            Ok(channels) => {
                backoff = MIN_BACKOFF;
                inner.resync(&channels);
            }
            Err(_) => {
                *lock(&subscriber.current) = None;
                drop(inner);
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// `d` plus up to half of it, so nodes do not reconnect in lockstep.
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 1000) / 2000.0)
}
