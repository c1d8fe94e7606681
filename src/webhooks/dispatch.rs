//! The dispatcher: one task turns class events into stored deliveries, one sends
//! what is due, each send in its own task.
//!
//! Invariants:
//! - The sender wakes when an event was stored or a send ended, and otherwise at
//!   the next due time, at most `POLL` apart (deliveries stored by the HTTP API, a
//!   test ping, are picked up that way).
//! - A claimed delivery holds one of `MAX_IN_FLIGHT` permits and marks its hook
//!   busy until its attempt is recorded; the lease in the store outlasts the
//!   send's timeout, so nothing is claimed twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, Semaphore, broadcast};

use super::sign::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{MAX_IN_FLIGHT, SEND_TIMEOUT, next_state};
use crate::rooms::events::{ClassEvent, EventBus};
use crate::store::{AttemptRecord, DueDelivery, NextState, Store, unix_now, unix_now_ms};

/// Longest sleep of the sender.
const POLL: Duration = Duration::from_secs(1);
/// A claimed delivery is not claimed again before this (the send's deadline and a margin).
const LEASE: Duration = Duration::from_secs(SEND_TIMEOUT.as_secs() + 5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Starts listening to `bus` and sending; `retry_base` is the wait after a first failure.
pub fn start(store: Store, bus: &EventBus, retry_base: Duration) -> Result<(), StartError> {
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("classcast-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(store.clone(), bus.subscribe(), wake.clone()));
    let sender = Arc::new(Sender { store, client, retry_base, wake, slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)), busy: Mutex::default() });
    tokio::spawn(sender.run());
    tracing::info!(retry_base_ms = retry_base.as_millis() as u64, "webhook dispatcher started");
    Ok(())
}

/// Stores one delivery per subscribed hook for every event; counts the events lost when it falls behind.
async fn listen(store: Store, mut rx: broadcast::Receiver<ClassEvent>, wake: Arc<Notify>) {
    let mut lost: u64 = 0;
    loop {
        match rx.recv().await {
            Ok(event) => {
                if enqueue(&store, &event) {
                    wake.notify_one();
                }
            }
            Err(RecvError::Lagged(n)) => {
                lost += n;
                tracing::warn!(lost = n, lost_total = lost, "webhooks fell behind the class events; these were not delivered");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Whether a delivery was stored.
fn enqueue(store: &Store, event: &ClassEvent) -> bool {
    let data = match serde_json::to_string(event) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(event = event.name(), error = %e, "cannot serialize a class event");
            return false;
        }
    };
    match store.enqueue_event(event.name(), &data, unix_now_ms()) {
        Ok(ids) => !ids.is_empty(),
        Err(e) => {
            tracing::error!(event = event.name(), error = %e, "cannot store webhook deliveries");
            false
        }
    }
}

struct Sender {
    store: Store,
    client: reqwest::Client,
    retry_base: Duration,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    /// Hooks with a delivery in flight.
    busy: Mutex<HashSet<String>>,
}

impl Sender {
    async fn run(self: Arc<Self>) {
        loop {
            self.send_due();
            let wait = self.until_next_due();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims what is due for the free slots and sends each in its own task.
    fn send_due(self: &Arc<Self>) {
        let free = self.slots.available_permits();
        if free == 0 {
            return;
        }
        let now = unix_now_ms();
        let busy = self.busy.lock().map(|b| b.clone()).unwrap_or_default();
        let due = match self.store.claim_due(now, now + LEASE.as_millis() as i64, free, &busy) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read due webhook deliveries");
                return;
            }
        };
        for d in due {
            // Only this task takes permits, and `free` were available.
            let Ok(permit) = self.slots.clone().try_acquire_owned() else { return };
            self.set_busy(&d.webhook_id, true);
            let me = self.clone();
            tokio::spawn(async move {
                me.deliver(&d).await;
                me.set_busy(&d.webhook_id, false);
                drop(permit);
                me.wake.notify_one();
            });
        }
    }

    fn set_busy(&self, hook: &str, busy: bool) {
        if let Ok(mut set) = self.busy.lock() {
            if busy { set.insert(hook.to_string()) } else { set.remove(hook) };
        }
    }

    /// Until the next pending delivery becomes due, at most `POLL`. One already due that
    /// waits for a slot or for its hook is not waited for: the send that ends wakes us.
    fn until_next_due(&self) -> Duration {
        let now = unix_now_ms();
        match self.store.next_due_after(now) {
            Ok(Some(at)) => Duration::from_millis((at - now) as u64).min(POLL),
            _ => POLL,
        }
    }

    /// One attempt: send, then record it with the delivery's new state.
    async fn deliver(&self, d: &DueDelivery) {
        let rec = attempt(&self.client, d).await;
        let ok = rec.status.is_some_and(|s| (200..300).contains(&s));
        let next = next_state(d.attempts + 1, ok, rec.at_ms + rec.duration_ms, self.retry_base);
        match self.store.record_attempt(&d.id, &rec, next) {
            Ok(Some(n)) => log_attempt(d, n, &rec, next),
            Ok(None) => tracing::debug!(delivery = %d.id, "webhook delivery gone (its hook was deleted)"),
            Err(e) => tracing::error!(delivery = %d.id, error = %e, "cannot record a webhook attempt"),
        }
    }
}

/// POSTs the delivery once and says how it went.
async fn attempt(client: &reqwest::Client, d: &DueDelivery) -> AttemptRecord {
    let body = sign::body(&d.id, &d.event, d.created_at_ms, &d.data);
    let timestamp = unix_now();
    let request = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &d.event)
        .header(DELIVERY_HEADER, &d.id)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, sign::signature(&d.secret, timestamp, &body))
        .body(body);
    let (at_ms, started) = (unix_now_ms(), Instant::now());
    let result = request.send().await;
    let duration_ms = started.elapsed().as_millis() as i64;
    match result {
        Ok(resp) => AttemptRecord { at_ms, status: Some(resp.status().as_u16()), error: None, duration_ms },
        Err(e) => AttemptRecord { at_ms, status: None, error: Some(describe(&e)), duration_ms },
    }
}

/// A short reason: the kind of failure and its innermost cause.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", SEND_TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let kind = if e.is_connect() { "connect" } else if e.is_builder() { "request" } else { "send" };
    format!("{kind}: {cause}")
}

fn log_attempt(d: &DueDelivery, attempt: u32, rec: &AttemptRecord, next: NextState) {
    let (delivery, hook, event, status, error) = (&d.id, &d.webhook_id, &d.event, rec.status, rec.error.as_deref());
    match next {
        NextState::Delivered => tracing::info!(%delivery, %hook, %event, attempt, ?status, duration_ms = rec.duration_ms, "webhook delivered"),
        NextState::RetryAt(at) => {
            let retry_in_ms = at - unix_now_ms();
            tracing::warn!(%delivery, %hook, %event, attempt, ?status, ?error, duration_ms = rec.duration_ms, retry_in_ms, "webhook attempt failed; will retry")
        }
        NextState::Failed => tracing::error!(%delivery, %hook, %event, attempt, ?status, ?error, duration_ms = rec.duration_ms, "webhook delivery failed; no more attempts"),
    }
}
