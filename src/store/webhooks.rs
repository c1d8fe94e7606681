//! Webhooks (migration 7): the hooks administrators register, one delivery per
//! (event, subscribed hook), and every attempt to send each delivery.
//!
//! Invariants:
//! - Creating or deleting a hook runs in one transaction with its audit row.
//! - A delivery's attempt count, state and next attempt time change only together
//!   with the attempt row that explains them (`record_attempt`, one transaction):
//!   `attempts` is always the number of its attempt rows.
//! - Only `pending` deliveries are claimed or attempted; `delivered` and `failed`
//!   are final.
//! - A claimed delivery is leased (`claim_due` moves its next attempt past the
//!   send's deadline), so it is never sent twice at once, and one cut short by a
//!   crash is sent again once the lease runs out: pending work outlives restarts.
//! - A hook's secret is stored (signing needs it) but is not part of `Webhook`,
//!   what the API lists; it leaves the store only with a delivery to sign.
//! - Deleting a hook deletes its deliveries and their attempts.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, new_id, unix_now, unix_now_ms};

/// The subscription to every event.
pub const ALL_EVENTS: &str = "*";
/// Largest page of a hook's deliveries.
pub const MAX_DELIVERY_PAGE: u32 = 200;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event names, or `["*"]` for all.
    pub events: Vec<String>,
    pub active: bool,
    pub created_at: i64,
}

impl Webhook {
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == ALL_EVENTS || e == event)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> DeliveryState {
        match s {
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One attempt to send a delivery, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why no answer came (connection refused, timeout...).
    pub error: Option<String>,
    pub duration_ms: i64,
    /// When the retry this failure scheduled is due (none after success or the last attempt).
    pub next_attempt_at_ms: Option<i64>,
}

/// A delivery and its attempts, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub state: DeliveryState,
    /// The event as sent (`data` of the body).
    pub data: serde_json::Value,
    pub created_at_ms: i64,
    /// When the next attempt is due, while pending.
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: Vec<Attempt>,
}

/// A delivery to send now, with what signing and sending need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: String,
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    pub event: String,
    /// The event's JSON (the body's `data`).
    pub data: String,
    pub created_at_ms: i64,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// The delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextState {
    Delivered,
    RetryAt(i64),
    Failed,
}

type Result<T> = std::result::Result<T, StoreError>;

impl Store {
    /// A new active hook; `events` and `url` were checked by the caller.
    pub fn create_webhook(&self, url: &str, events: &[String], secret: &str) -> Result<Webhook> {
        let hook = Webhook { id: new_id('w'), url: url.into(), events: events.to_vec(), active: true, created_at: unix_now() };
        transaction(self, |c| {
            c.execute(
                "INSERT INTO webhooks (id, url, secret, events, active, created_at) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                params![hook.id, hook.url, secret, hook.events.join(","), hook.created_at],
            )?;
            audit(c, "create", &hook.id, &format!("{} for {}", hook.url, hook.events.join(", ")))
        })?;
        Ok(hook)
    }

    pub fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.with(|c| c.prepare(&format!("SELECT {HOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"))?.query_map([], hook_row)?.collect())
    }

    pub fn webhook(&self, id: &str) -> Result<Option<Webhook>> {
        self.with(|c| c.query_row(&format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = ?1"), [id], hook_row).optional())
    }

    /// Deletes a hook with its deliveries; false if there was none.
    pub fn delete_webhook(&self, id: &str) -> Result<bool> {
        transaction(self, |c| {
            let url: Option<String> = c.query_row("SELECT url FROM webhooks WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            let Some(url) = url else { return Ok(false) };
            c.execute("DELETE FROM webhooks WHERE id = ?1", [id])?;
            audit(c, "delete", id, &url)?;
            Ok(true)
        })
    }

    /// One pending delivery of `event` for every active hook subscribed to it; their ids.
    pub fn enqueue_event(&self, event: &str, data: &str, now_ms: i64) -> Result<Vec<String>> {
        transaction(self, |c| {
            let hooks: Vec<Webhook> = c.prepare(&format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE active = 1"))?.query_map([], hook_row)?.collect::<rusqlite::Result<_>>()?;
            hooks.iter().filter(|h| h.wants(event)).map(|h| insert_delivery(c, &h.id, event, data, now_ms)).collect()
        })
    }

    /// One pending delivery for one hook, whatever it subscribes to (a test ping); none
    /// if the hook does not exist.
    pub fn enqueue_delivery(&self, webhook_id: &str, event: &str, data: &str, now_ms: i64) -> Result<Option<String>> {
        transaction(self, |c| {
            if c.query_row("SELECT 1 FROM webhooks WHERE id = ?1", [webhook_id], |_| Ok(())).optional()?.is_none() {
                return Ok(None);
            }
            insert_delivery(c, webhook_id, event, data, now_ms).map(Some)
        })
    }

    /// Up to `limit` pending deliveries due at `now_ms`: the first due of each hook not in
    /// `busy`, the earliest first; each is leased until `lease_until_ms`.
    pub fn claim_due(&self, now_ms: i64, lease_until_ms: i64, limit: usize, busy: &HashSet<String>) -> Result<Vec<DueDelivery>> {
        transaction(self, |c| {
            // The first due delivery of each hook, so a hook with a backlog never hides the others.
            let sql = "SELECT id, webhook_id, url, secret, event, payload, created_at_ms, attempts FROM (
                         SELECT d.id, d.webhook_id, w.url, w.secret, d.event, d.payload, d.created_at_ms, d.attempts,
                                d.next_attempt_at_ms AS due, d.rowid AS seq,
                                ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at_ms, d.rowid) AS nth
                         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                         WHERE d.state = 'pending' AND d.next_attempt_at_ms <= ?1)
                       WHERE nth = 1 ORDER BY due, seq";
            let due: Vec<DueDelivery> = c.prepare(sql)?.query_map([now_ms], due_row)?.collect::<rusqlite::Result<_>>()?;
            let chosen: Vec<DueDelivery> = due.into_iter().filter(|d| !busy.contains(&d.webhook_id)).take(limit).collect();
            let mut lease = c.prepare("UPDATE webhook_deliveries SET next_attempt_at_ms = ?2 WHERE id = ?1")?;
            for d in &chosen {
                lease.execute(params![d.id, lease_until_ms])?;
            }
            Ok(chosen)
        })
    }

    /// When the earliest pending delivery not yet due at `now_ms` becomes due (leases included).
    pub fn next_due_after(&self, now_ms: i64) -> Result<Option<i64>> {
        let sql = "SELECT MIN(next_attempt_at_ms) FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at_ms > ?1";
        self.with(|c| c.query_row(sql, [now_ms], |r| r.get(0)))
    }

    /// Records an attempt and the delivery's new state together; the attempt's number,
    /// or none if the delivery is gone (its hook was deleted) or no longer pending.
    pub fn record_attempt(&self, delivery_id: &str, rec: &AttemptRecord, next: NextState) -> Result<Option<u32>> {
        transaction(self, |c| {
            let sql = "SELECT attempts FROM webhook_deliveries WHERE id = ?1 AND state = 'pending'";
            let Some(made) = c.query_row(sql, [delivery_id], |r| r.get::<_, u32>(0)).optional()? else { return Ok(None) };
            let attempt = made + 1;
            let (state, retry_at) = match next {
                NextState::Delivered => (DeliveryState::Delivered, None),
                NextState::RetryAt(at) => (DeliveryState::Pending, Some(at)),
                NextState::Failed => (DeliveryState::Failed, None),
            };
            c.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at_ms, status, error, duration_ms, next_attempt_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![delivery_id, attempt, rec.at_ms, rec.status, rec.error, rec.duration_ms, retry_at],
            )?;
            c.execute(
                "UPDATE webhook_deliveries SET attempts = ?2, state = ?3, next_attempt_at_ms = ?4 WHERE id = ?1",
                params![delivery_id, attempt, state.as_str(), retry_at.unwrap_or(rec.at_ms)],
            )?;
            Ok(Some(attempt))
        })
    }

    /// A page of a hook's deliveries, newest first, each with its attempts, and the total.
    pub fn deliveries(&self, webhook_id: &str, limit: u32, offset: u32) -> Result<(Vec<Delivery>, u64)> {
        let limit = limit.clamp(1, MAX_DELIVERY_PAGE);
        self.with(|c| {
            let total: u64 = c.query_row("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?1", [webhook_id], |r| r.get(0))?;
            let sql = "SELECT id, webhook_id, event, state, payload, created_at_ms, next_attempt_at_ms FROM webhook_deliveries
                       WHERE webhook_id = ?1 ORDER BY created_at_ms DESC, rowid DESC LIMIT ?2 OFFSET ?3";
            let page: Vec<Delivery> = c.prepare(sql)?.query_map(params![webhook_id, limit, offset], delivery_row)?.collect::<rusqlite::Result<_>>()?;
            let page = page.into_iter().map(|d| with_attempts(c, d)).collect::<rusqlite::Result<_>>()?;
            Ok((page, total))
        })
    }
}

/// `f`'s writes, all or none.
fn transaction<T>(store: &Store, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
    let mut conn = store.conn.lock().map_err(|_| StoreError::Poisoned)?;
    let tx = conn.transaction()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// An admin change's audit row (the same log as the district's).
fn audit(c: &Connection, action: &str, id: &str, summary: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit_log (at_ms, action, entity, entity_id, summary) VALUES (?1, ?2, 'webhook', ?3, ?4)",
        params![unix_now_ms(), action, id, summary],
    )?;
    Ok(())
}

fn insert_delivery(c: &Connection, webhook_id: &str, event: &str, data: &str, now_ms: i64) -> rusqlite::Result<String> {
    let id = new_id('v');
    c.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, state, attempts, next_attempt_at_ms, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
        params![id, webhook_id, event, data, now_ms],
    )?;
    Ok(id)
}

fn with_attempts(c: &Connection, d: Delivery) -> rusqlite::Result<Delivery> {
    let sql = "SELECT attempt, at_ms, status, error, duration_ms, next_attempt_at_ms FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt";
    let attempts = c.prepare_cached(sql)?.query_map([&d.id], attempt_row)?.collect::<rusqlite::Result<_>>()?;
    Ok(Delivery { attempts, ..d })
}

const HOOK_COLUMNS: &str = "id, url, events, active, created_at";

fn hook_row(r: &rusqlite::Row) -> rusqlite::Result<Webhook> {
    let events: String = r.get(2)?;
    let events = events.split(',').filter(|e| !e.is_empty()).map(String::from).collect();
    Ok(Webhook { id: r.get(0)?, url: r.get(1)?, events, active: r.get(3)?, created_at: r.get(4)? })
}

fn due_row(r: &rusqlite::Row) -> rusqlite::Result<DueDelivery> {
    Ok(DueDelivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        url: r.get(2)?,
        secret: r.get(3)?,
        event: r.get(4)?,
        data: r.get(5)?,
        created_at_ms: r.get(6)?,
        attempts: r.get(7)?,
    })
}

fn delivery_row(r: &rusqlite::Row) -> rusqlite::Result<Delivery> {
    let state = DeliveryState::parse(&r.get::<_, String>(3)?);
    let payload: String = r.get(4)?;
    // Only this server writes payloads; should one not parse, show it as text.
    let data = serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
    Ok(Delivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event: r.get(2)?,
        state,
        data,
        created_at_ms: r.get(5)?,
        next_attempt_at_ms: if state == DeliveryState::Pending { Some(r.get(6)?) } else { None },
        attempts: Vec::new(),
    })
}

fn attempt_row(r: &rusqlite::Row) -> rusqlite::Result<Attempt> {
    Ok(Attempt { attempt: r.get(0)?, at_ms: r.get(1)?, status: r.get(2)?, error: r.get(3)?, duration_ms: r.get(4)?, next_attempt_at_ms: r.get(5)? })
}

#[cfg(test)]
mod tests;
