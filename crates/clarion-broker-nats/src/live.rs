//! Live delivery: one core NATS subscription per channel this node
//! subscribed to (`<prefix>.c.<channel>.*`), read by one task, so the
//! handler is never called concurrently for one channel and sees each
//! channel's events in the order NATS delivered them.

use std::sync::Arc;

use async_nats::{Message, Subject};
use bytes::Bytes;
use clarion_hub::BrokerError;
use clarion_wire::{ClientInfo, Publication};
use futures_util::StreamExt;

use crate::error::{bounded, connected, unavailable};
use crate::history::record::{epoch_of, is_marker};
use crate::shared::{lock, Shared};
use crate::subjects::Kind;

impl Shared {
    /// Subscribes to `channel`; in effect when it returns (the server has
    /// answered a request sent after the subscription: [`Shared::sync`]).
    pub(crate) async fn subscribe_channel(
        self: &Arc<Self>,
        channel: &str,
    ) -> Result<(), BrokerError> {
        *lock(&self.counts).entry(channel.to_owned()).or_default() += 1;
        let result = self.start_live(channel).await;
        if result.is_err() {
            self.uncount(channel);
        }
        result
    }

    /// Takes one count off `channel`; true when none is left.
    fn uncount(&self, channel: &str) -> bool {
        let mut counts = lock(&self.counts);
        let Some(n) = counts.get_mut(channel) else {
            return true;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(channel);
            return true;
        }
        false
    }

    /// Starts the channel's subscription unless it runs already.
    async fn start_live(self: &Arc<Self>, channel: &str) -> Result<(), BrokerError> {
        if lock(&self.live).contains_key(channel) {
            return Ok(());
        }
        connected(&self.client)?;
        let subject = self.subjects.channel_all(channel);
        let subscribe = async {
            let sub = self.client.subscribe(subject).await;
            sub.map_err(|e| unavailable("subscribe", e))
        };
        let mut sub = bounded(self.config.command_timeout, "subscribe", subscribe).await?;
        // In effect from here on; until the reading task runs, messages
        // wait in the subscription's queue.
        self.sync().await?;
        let shared = Arc::clone(self);
        let name = channel.to_owned();
        let task = tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                shared.deliver(&name, &message);
            }
        });
        let mut live = lock(&self.live);
        if live.contains_key(channel) {
            task.abort(); // A concurrent subscribe won.
        } else {
            live.insert(channel.to_owned(), task.abort_handle());
        }
        Ok(())
    }

    /// Stops live delivery of `channel` (dropping the subscription
    /// unsubscribes it).
    pub(crate) fn unsubscribe_channel(&self, channel: &str) {
        if !self.uncount(channel) {
            return;
        }
        if let Some(task) = lock(&self.live).remove(channel) {
            task.abort();
        }
    }

    /// Publishes an event without history on a channel subject.
    pub(crate) async fn publish_live(
        &self,
        channel: &str,
        kind: Kind,
        payload: Vec<u8>,
    ) -> Result<(), BrokerError> {
        connected(&self.client)?;
        let subject = Subject::from(self.subjects.channel(channel, kind));
        let publish = async {
            let sent = self.client.publish(subject, Bytes::from(payload)).await;
            sent.map_err(|e| unavailable("publish", e))?;
            // Done means it left this process, not that it sits in our
            // buffer (a flush writes to the socket: no round trip).
            let flushed = self.client.flush().await;
            flushed.map_err(|e| unavailable("publish", e))
        };
        bounded(self.config.command_timeout, "publish", publish).await
    }

    fn deliver(&self, channel: &str, message: &Message) {
        let Some(handler) = self.handler.get() else {
            return;
        };
        let headers = message.headers.as_ref();
        match Kind::of_subject(&message.subject) {
            Some(Kind::History) if !is_marker(headers) => {
                let publication = serde_json::from_slice::<Publication>(&message.payload);
                if let (Ok(p), Some(epoch)) = (publication, epoch_of(headers)) {
                    handler.on_publication(channel, &p, Some(epoch));
                }
            }
            Some(Kind::Live) => {
                if let Ok(p) = serde_json::from_slice::<Publication>(&message.payload) {
                    handler.on_publication(channel, &p, None);
                }
            }
            Some(kind @ (Kind::Join | Kind::Leave)) => {
                let Ok(info) = serde_json::from_slice::<ClientInfo>(&message.payload) else {
                    return;
                };
                if kind == Kind::Join {
                    handler.on_join(channel, &info);
                } else {
                    handler.on_leave(channel, &info);
                }
            }
            _ => {}
        }
    }
}
