//! Live delivery: one dedicated RESP3 connection per shard carrying this
//! node's subscriptions (one per channel per node, not per client), its
//! pushes decoded straight into the handler on the connection's reader
//! task, so one channel's messages are handled in order and never
//! concurrently. A supervisor task per shard notices a dropped connection
//! (a disconnect push, or a failed ping), reconnects with backoff,
//! resubscribes every channel, then calls `on_resync` for them.

use std::collections::HashMap;
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
///
/// Each channel has a count, +1 per `subscribe` and -1 per `unsubscribe`,
/// and is wanted while it is positive; every (un)subscribe command, one at
/// a time, sends the channel's *current* wanted state. So when the hub's
/// last-member `unsubscribe` and a new first-member `subscribe` race and
/// reach Redis out of order, the node still ends up subscribed.
pub(crate) struct Subscriber {
    index: usize,
    client: Client,
    channels: Mutex<HashMap<String, i64>>,
    current: Mutex<Option<Current>>,
    commands: tokio::sync::Mutex<()>,
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
            commands: tokio::sync::Mutex::new(()),
        }
    }

    fn count(&self, channel: &str, delta: i64) {
        let mut channels = lock(&self.channels);
        let count = channels.entry(channel.to_owned()).or_default();
        *count += delta;
        if *count == 0 {
            channels.remove(channel);
        }
    }

    fn wanted(&self, channel: &str) -> bool {
        lock(&self.channels).get(channel).is_some_and(|&n| n > 0)
    }

    fn conn(&self) -> Option<MultiplexedConnection> {
        lock(&self.current).as_ref().map(|c| c.conn.clone())
    }

    /// Whether the subscription connection is up.
    pub(crate) fn is_connected(&self) -> bool {
        self.conn().is_some()
    }

    /// The channels this node subscribed on this shard.
    pub(crate) fn channels(&self) -> Vec<String> {
        let channels = lock(&self.channels);
        let wanted = channels.iter().filter(|(_, &n)| n > 0);
        wanted.map(|(c, _)| c.clone()).collect()
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
        // No (un)subscribe interleaves with the resubscription.
        let _commands = self.commands.lock().await;
        *lock(&self.current) = Some(Current {
            conn: conn.clone(),
            down,
        });
        let channels = self.channels();
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
        self.count(channel, 1);
        self.sync(inner, channel).await
    }

    /// Removes `channel` (for this `subscribe`).
    pub(crate) async fn unsubscribe(
        &self,
        inner: &Inner,
        channel: &str,
    ) -> Result<(), BrokerError> {
        self.count(channel, -1);
        self.sync(inner, channel).await
    }

    /// Sends Redis the channel's wanted state.
    async fn sync(&self, inner: &Inner, channel: &str) -> Result<(), BrokerError> {
        let _commands = self.commands.lock().await;
        let wanted = self.wanted(channel);
        let Some(mut conn) = self.conn() else {
            return match wanted {
                true => Err(BrokerError::unavailable("redis: pub/sub connection down")),
                false => Ok(()),
            };
        };
        let command = match (wanted, inner.config.sharded_pubsub) {
            (true, sharded) => subscribe_command(sharded),
            (false, true) => "SUNSUBSCRIBE",
            (false, false) => "UNSUBSCRIBE",
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
        if inner.is_stopped() {
            return;
        }
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
