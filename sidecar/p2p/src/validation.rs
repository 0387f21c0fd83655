//! The async validation hook: a [`GossipValidator`] judges each queued message before gossipsub
//! may forward it.

use std::future::Future;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::service::{GossipMessage, MessageVerdict, NetworkHandle};

/// Decides whether a gossip message is valid. Runs before the message is forwarded.
pub trait GossipValidator: Send + Sync + 'static {
    /// The verdict on `message`.
    fn validate(&self, message: &GossipMessage) -> impl Future<Output = MessageVerdict> + Send;
}

impl<F, Fut> GossipValidator for F
where
    F: Fn(&GossipMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = MessageVerdict> + Send,
{
    fn validate(&self, message: &GossipMessage) -> impl Future<Output = MessageVerdict> + Send {
        self(message)
    }
}

/// Runs `validator` over the queue, in arrival order, reports each verdict to gossipsub and
/// passes accepted messages on through the returned receiver. Messages from a peer banned
/// since they were queued are ignored without validation. The task ends when the queue
/// closes (the network stopped) or the network handle fails.
pub fn spawn_validation<V: GossipValidator>(
    handle: NetworkHandle,
    mut messages: mpsc::Receiver<GossipMessage>,
    validator: V,
    accepted_capacity: usize,
) -> (mpsc::Receiver<GossipMessage>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(accepted_capacity.max(1));
    let task = tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            // A peer banned meanwhile (its score fell): its queued messages are not judged.
            let verdict = if handle.is_banned(&message.source) {
                MessageVerdict::Ignore
            } else {
                validator.validate(&message).await
            };
            if handle.report_validation(&message, verdict).await.is_err() {
                break;
            }
            if verdict == MessageVerdict::Accept && tx.send(message).await.is_err() {
                tracing::debug!("accepted-message receiver dropped; stopping validation");
                break;
            }
        }
    });
    (rx, task)
}
