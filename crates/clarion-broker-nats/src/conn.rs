//! Connecting to NATS and making sure the history stream and the presence
//! and idempotency buckets exist (again, after a server lost them).

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{Client, ConnectOptions, Event};
use clarion_hub::{BrokerError, NodeIdentity};
use tokio::sync::mpsc;

use crate::error::{classify, unavailable};
use crate::subjects::Subjects;
use crate::NatsConfig;

/// The JetStream objects the broker uses, as last ensured.
#[derive(Clone)]
pub(crate) struct Stores {
    /// Channel history: one stream over every `<prefix>.c.*.h` subject.
    pub(crate) history: stream::Stream,
    /// The stream's creation time (unix nanoseconds), part of every epoch
    /// so a recreated stream never repeats one.
    pub(crate) created: u64,
    /// Presence entries and per-user client sets.
    pub(crate) presence: kv::Store,
    /// Idempotency keys of publications without history.
    pub(crate) idempotency: kv::Store,
}

/// Connects with the broker's settings; connection events go to `events`.
pub(crate) async fn connect(
    config: &NatsConfig,
    identity: &NodeIdentity,
    events: mpsc::UnboundedSender<Event>,
) -> Result<Client, BrokerError> {
    let options = ConnectOptions::new()
        .name(format!("clarion node {} ({})", identity.name, identity.id))
        .connection_timeout(config.command_timeout)
        .request_timeout(Some(config.command_timeout))
        .max_reconnects(None)
        // Quick retries: a restarted server is back within a second or two,
        // and clients wait for the resync that follows.
        .reconnect_delay_callback(|attempts| Duration::from_millis(100 * attempts.min(20) as u64))
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                // The receiver is gone only when the broker is.
                let _ = events.send(event);
            }
        });
    let connect = async_nats::connect_with_options(config.servers.clone(), options);
    match tokio::time::timeout(config.command_timeout, connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => Err(unavailable("connect", err)),
        Err(_) => Err(unavailable("connect", "timed out")),
    }
}

/// The JetStream context, with the broker's timeout on every request.
pub(crate) fn jetstream(client: Client, config: &NatsConfig) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(config.command_timeout)
        .ack_timeout(config.command_timeout)
        .build(client)
}

/// Creates (or finds) the stream and buckets.
pub(crate) async fn ensure(
    js: &jetstream::Context,
    config: &NatsConfig,
    subjects: &Subjects,
) -> Result<Stores, BrokerError> {
    let stem = config.stem();
    let history = js
        .get_or_create_stream(history_config(config, subjects))
        .await
        .map_err(|e| classify("history stream", e))?;
    let created = history.cached_info().created.unix_timestamp_nanos();
    let presence = bucket(
        js,
        config,
        format!("{stem}_presence"),
        config.presence_max_ttl,
    );
    let idempotency = bucket(
        js,
        config,
        format!("{stem}_idempotency"),
        config.idempotency_window,
    );
    Ok(Stores {
        history,
        created: u64::try_from(created).unwrap_or(0),
        presence: presence.await?,
        idempotency: idempotency.await?,
    })
}

fn history_config(config: &NatsConfig, subjects: &Subjects) -> stream::Config {
    stream::Config {
        name: format!("{}_history", config.stem()),
        description: Some("Clarion channel history".to_owned()),
        subjects: vec![subjects.history_filter()],
        republish: Some(stream::Republish {
            source: subjects.history_filter(),
            destination: subjects.republish_destination(),
            headers_only: false,
        }),
        // One more than the largest history: a stream's empty-position
        // marker may sit below its oldest publication.
        max_messages_per_subject: i64::try_from(config.max_history_size + 1).unwrap_or(i64::MAX),
        max_age: config.history_max_age,
        duplicate_window: config.idempotency_window,
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

async fn bucket(
    js: &jetstream::Context,
    config: &NatsConfig,
    name: String,
    max_age: Duration,
) -> Result<kv::Store, BrokerError> {
    // The KV bucket's stream, made by hand: async-nats' `create_key_value`
    // first reads the account info, whose 2.9 shape it cannot parse. This
    // is the layout of a KV bucket with history 1 (what `nats kv add` makes).
    let stream = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        duplicate_window: max_age.min(Duration::from_secs(120)),
        ..Default::default()
    };
    js.get_or_create_stream(stream)
        .await
        .map_err(|e| classify(&format!("bucket {name}"), e))?;
    js.get_key_value(&name)
        .await
        .map_err(|e| classify(&format!("bucket {name}"), e))
}
