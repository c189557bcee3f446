//! Node-to-node control messages the hub sends and acts on: disconnect a
//! user, or unsubscribe a user from a channel, on every node of the
//! cluster. The payloads are the hub's own JSON; the broker only carries
//! them ([`Broker::broadcast_control`](crate::Broker::broadcast_control)).

use bytes::Bytes;
use clarion_wire::DisconnectPush;
use serde::{Deserialize, Serialize};

use crate::broker::{BrokerError, Control, ControlKind};
use crate::hub::{Hub, HubInner};

/// `disconnect_user`: end every session of `user`.
#[derive(Debug, Serialize, Deserialize)]
struct DisconnectUser {
    user: String,
    push: DisconnectPush,
}

/// `unsubscribe_user`: end `user`'s subscriptions to `channel`.
#[derive(Debug, Serialize, Deserialize)]
struct UnsubscribeUser {
    user: String,
    channel: String,
}

fn encode<T: Serialize>(message: &T) -> Bytes {
    // Plain structs of strings and numbers: encoding cannot fail.
    Bytes::from(serde_json::to_vec(message).expect("control messages encode"))
}

impl Hub {
    /// Disconnects every session of `user` on every node: here at once
    /// (the count returned), on the other nodes through the broker.
    pub async fn disconnect_user_everywhere(
        &self,
        user: &str,
        push: DisconnectPush,
    ) -> Result<usize, BrokerError> {
        let here = self.disconnect_user(user, push.clone());
        let message = DisconnectUser {
            user: user.to_owned(),
            push,
        };
        let payload = encode(&message);
        let broker = &self.inner.broker;
        broker
            .broadcast_control(ControlKind::DisconnectUser, payload)
            .await?;
        Ok(here)
    }

    /// Unsubscribes every session of `user` from `channel` on every node
    /// (`unsubscribe` push 2000): here at once (the count returned), on
    /// the other nodes through the broker.
    pub async fn unsubscribe_user_everywhere(
        &self,
        user: &str,
        channel: &str,
    ) -> Result<usize, BrokerError> {
        let here = self.unsubscribe_user(user, channel).await;
        let message = UnsubscribeUser {
            user: user.to_owned(),
            channel: channel.to_owned(),
        };
        let broker = &self.inner.broker;
        broker
            .broadcast_control(ControlKind::UnsubscribeUser, encode(&message))
            .await?;
        Ok(here)
    }
}

impl HubInner {
    /// A control message from the broker. Our own broadcasts come back
    /// too; they were applied when sent.
    pub(crate) fn on_control(&self, control: &Control) {
        if control.from == self.broker.identity().id {
            return;
        }
        let Some(me) = self.myself() else {
            return;
        };
        let hub = Hub { inner: me };
        match control.kind {
            ControlKind::DisconnectUser => {
                if let Ok(m) = serde_json::from_slice::<DisconnectUser>(&control.payload) {
                    hub.disconnect_user(&m.user, m.push);
                }
            }
            ControlKind::UnsubscribeUser => {
                if let Ok(m) = serde_json::from_slice::<UnsubscribeUser>(&control.payload) {
                    tokio::spawn(async move { hub.unsubscribe_user(&m.user, &m.channel).await });
                }
            }
            // Route belongs to the HTTP transports; other kinds to newer nodes.
            _ => {}
        }
    }
}
