//! The durable outbox: every notification, one item per receiving integration, written to
//! `state.db` in the transaction that updates its group's state, before anything is sent; then
//! claimed under a lease, sent, and marked delivered, failed (retried with exponential backoff
//! and jitter) or dead (too old, or refused for good), when it goes once to the fallback
//! receiver.
//!
//! Time is a parameter of every call, so the whole life of an item can be played out without a
//! clock. Each state change comes back as a [`NotificationEvent`], the alert log's
//! `notification` line.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use rusqlite::Connection;
//! use tradewatch::notify::outbox::{IntegrationKind, IntegrationRef, Outbox, OutboxSettings};
//! # fn notification() -> tradewatch::notify::Notification {
//! #     tradewatch::notify::Notification { id: "n1".into(), receiver: "ops".into(),
//! #         group_key: "{}:{}".into(), group_labels: Default::default(), alerts: vec![],
//! #         created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap() }
//! # }
//!
//! let outbox = Outbox::open_in_memory(OutboxSettings::default()).unwrap();
//! let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
//! let target = IntegrationRef::new("ops", IntegrationKind::Webhook, 0);
//! outbox.enqueue_now(&notification(), &target, now).unwrap();
//! let claimed = outbox.claim_due(now, 10).unwrap();
//! assert_eq!(claimed.len(), 1);
//! let events = outbox.mark_delivered(claimed[0].id, Some("200 OK".into()), now).unwrap();
//! assert_eq!(events[0].outcome, "delivered");
//! ```

mod channels;
mod event;
mod sender;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

pub use channels::Channels;
pub use event::NotificationEvent;
pub use sender::{Attempt, Deliver, Sender};

use super::types::{Alert, Notification};
use crate::config::OutboxConfig;

/// Why an outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite refused.
    #[error("outbox database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored payload does not decode (a corrupt row, or one from another version).
    #[error("outbox item {id}: payload does not decode: {source}")]
    Payload {
        /// The item.
        id: i64,
        /// Why.
        source: serde_json::Error,
    },
    /// No item has this id.
    #[error("outbox item {0} not found")]
    NotFound(i64),
    /// Only dead items can be retried.
    #[error("outbox item {id} is {state}, not dead")]
    NotDead {
        /// The item.
        id: i64,
        /// Its state.
        state: ItemState,
    },
    /// A stored value is not what the schema allows.
    #[error("outbox item {id}: {problem}")]
    Corrupt {
        /// The item.
        id: i64,
        /// What is wrong.
        problem: String,
    },
    /// A background task ended abnormally.
    #[error("outbox task: {0}")]
    Task(String),
}

pub use super::config::IntegrationKind;

/// One integration of one receiver: `webhook[0]` of `ops`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationRef {
    /// The receiver's name.
    pub receiver: String,
    /// Email or webhook.
    pub kind: IntegrationKind,
    /// The position among the receiver's integrations of that kind.
    pub index: usize,
}

impl IntegrationRef {
    /// The `index`th integration of `kind` of `receiver`.
    pub fn new(receiver: impl Into<String>, kind: IntegrationKind, index: usize) -> Self {
        IntegrationRef {
            receiver: receiver.into(),
            kind,
            index,
        }
    }

    /// `webhook[0]`, as Alertmanager names an integration in its logs.
    pub fn integration(&self) -> String {
        format!("{}[{}]", self.kind.as_str(), self.index)
    }
}

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemState {
    /// Waiting for its next attempt (or being attempted, under a lease).
    Pending,
    /// Delivered.
    Delivered,
    /// Given up on.
    Dead,
}

impl ItemState {
    /// Every state, for metrics that show each.
    pub const ALL: [ItemState; 3] = [ItemState::Pending, ItemState::Delivered, ItemState::Dead];

    /// `pending`, `delivered` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Delivered => "delivered",
            ItemState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<ItemState> {
        ItemState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The receiver that gets what is dead, resolved into its integrations.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// Its name.
    pub receiver: String,
    /// Its integrations: each gets a copy of a dead item.
    pub integrations: Vec<(IntegrationKind, usize)>,
}

/// How the outbox retries, from [`OutboxConfig`] and the fallback receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxSettings {
    /// Age (from enqueueing, or from a manual retry) at which an item is dead.
    pub max_age: Duration,
    /// Delay before the first retry.
    pub backoff_min: Duration,
    /// Longest delay between retries.
    pub backoff_max: Duration,
    /// How long a claim holds an item; a sender that dies mid-send loses it after this.
    pub lease: Duration,
    /// Where dead items go, once.
    pub fallback: Option<Fallback>,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings::from_config(&OutboxConfig::default(), None)
    }
}

impl OutboxSettings {
    /// The settings of the `notifier.outbox` section, with the fallback receiver resolved.
    pub fn from_config(config: &OutboxConfig, fallback: Option<Fallback>) -> OutboxSettings {
        OutboxSettings {
            max_age: config.max_age.0,
            backoff_min: config.backoff.min.0,
            backoff_max: config.backoff.max.0,
            lease: Duration::from_secs(120),
            fallback,
        }
    }
}

/// The delay before retry number `attempt` (1 for the first retry): `min · 2^(attempt-1)`
/// capped at `max`, then jittered by `unit` (in 0..1) into its upper half, never below `min`.
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(62);
    let base = min
        .checked_mul(1u32 << exponent.min(31))
        .unwrap_or(max)
        .min(max);
    let jittered = base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0));
    jittered.max(min).min(max)
}

/// An outbox item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The item's id (`POST /api/v1/outbox/{id}/retry`).
    pub id: i64,
    /// Where it goes.
    pub target: IntegrationRef,
    /// What it carries.
    pub notification: Notification,
    /// Its state.
    pub state: ItemState,
    /// Attempts claimed so far.
    pub attempts: u32,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it is due next.
    pub next_attempt_at: DateTime<Utc>,
    /// When it dies if still undelivered.
    pub expires_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The last response (status line or SMTP reply).
    pub last_response: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The dead item this one is the fallback copy of.
    pub fallback_of: Option<i64>,
}

/// How many items a state holds, and the age of its oldest (self-metrics
/// `tradewatch_outbox_items` and `tradewatch_outbox_oldest_age_seconds`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateStats {
    /// The state.
    pub state: ItemState,
    /// Items in it.
    pub count: u64,
    /// Seconds since its oldest item was enqueued; 0 when empty.
    pub oldest_age_seconds: f64,
}

/// The notification as stored: our own serde shape, so the payload format is the outbox's.
#[derive(Serialize, Deserialize)]
struct StoredNotification {
    id: String,
    receiver: String,
    group_key: String,
    group_labels: BTreeMap<String, String>,
    alerts: Vec<StoredAlert>,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct StoredAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    generator_url: String,
    timeout: bool,
}

fn encode(n: &Notification) -> String {
    let stored = StoredNotification {
        id: n.id.clone(),
        receiver: n.receiver.clone(),
        group_key: n.group_key.clone(),
        group_labels: n.group_labels.clone(),
        alerts: n
            .alerts
            .iter()
            .map(|a| StoredAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                updated_at: a.updated_at,
                generator_url: a.generator_url.clone(),
                timeout: a.timeout,
            })
            .collect(),
        created_at: n.created_at,
    };
    serde_json::to_string(&stored)
        .unwrap_or_else(|e| unreachable!("a notification serializes: {e}"))
}

fn decode(id: i64, payload: &str) -> Result<Notification, OutboxError> {
    let stored: StoredNotification =
        serde_json::from_str(payload).map_err(|source| OutboxError::Payload { id, source })?;
    Ok(Notification {
        id: stored.id,
        receiver: stored.receiver,
        group_key: stored.group_key,
        group_labels: stored.group_labels,
        alerts: stored
            .alerts
            .into_iter()
            .map(|a| Alert {
                labels: a.labels,
                annotations: a.annotations,
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                updated_at: a.updated_at,
                generator_url: a.generator_url,
                timeout: a.timeout,
            })
            .collect(),
        created_at: stored.created_at,
    })
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    integration_index INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    last_response TEXT,
    delivered_at INTEGER,
    fallback_of INTEGER,
    fallback_sent INTEGER NOT NULL DEFAULT 0,
    UNIQUE (notification_id, receiver, integration, integration_index)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
";

const COLUMNS: &str = "id, receiver, integration, integration_index, payload, state, attempts, \
     created_at, next_attempt_at, expires_at, last_error, last_response, delivered_at, fallback_of";

fn item_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawItem> {
    Ok(RawItem {
        id: row.get(0)?,
        receiver: row.get(1)?,
        integration: row.get(2)?,
        index: row.get(3)?,
        payload: row.get(4)?,
        state: row.get(5)?,
        attempts: row.get(6)?,
        created_at: row.get(7)?,
        next_attempt_at: row.get(8)?,
        expires_at: row.get(9)?,
        last_error: row.get(10)?,
        last_response: row.get(11)?,
        delivered_at: row.get(12)?,
        fallback_of: row.get(13)?,
    })
}

struct RawItem {
    id: i64,
    receiver: String,
    integration: String,
    index: i64,
    payload: String,
    state: String,
    attempts: i64,
    created_at: i64,
    next_attempt_at: i64,
    expires_at: i64,
    last_error: Option<String>,
    last_response: Option<String>,
    delivered_at: Option<i64>,
    fallback_of: Option<i64>,
}

impl RawItem {
    fn decode(self) -> Result<Item, OutboxError> {
        let corrupt = |problem: String| OutboxError::Corrupt {
            id: self.id,
            problem,
        };
        let kind = IntegrationKind::parse(&self.integration)
            .ok_or_else(|| corrupt(format!("unknown integration {:?}", self.integration)))?;
        let state = ItemState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?;
        Ok(Item {
            id: self.id,
            target: IntegrationRef::new(self.receiver, kind, self.index.max(0) as usize),
            notification: decode(self.id, &self.payload)?,
            state,
            attempts: self.attempts.clamp(0, i64::from(u32::MAX)) as u32,
            created_at: from_ms(self.created_at),
            next_attempt_at: from_ms(self.next_attempt_at),
            expires_at: from_ms(self.expires_at),
            last_error: self.last_error,
            last_response: self.last_response,
            delivered_at: self.delivered_at.map(from_ms),
            fallback_of: self.fallback_of,
        })
    }
}

/// The outbox over its own connection to `state.db`.
pub struct Outbox {
    conn: Mutex<Connection>,
    settings: OutboxSettings,
    rng: Mutex<fastrand::Rng>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Sets the durability `state.db` needs: WAL, `synchronous=FULL`, and a busy timeout for the
/// other connections that write it.
pub fn configure(conn: &Connection) -> Result<(), OutboxError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(())
}

impl Outbox {
    /// Creates the outbox table in `conn`'s database if it is not there.
    pub fn init(conn: &Connection) -> Result<(), OutboxError> {
        conn.execute_batch(SCHEMA)?;
        Ok(())
    }

    /// Opens (creating) the database at `path` with WAL and `synchronous=FULL`, and the table.
    pub fn open(path: &Path, settings: OutboxSettings) -> Result<Outbox, OutboxError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        Outbox::init(&conn)?;
        Ok(Outbox::with_connection(conn, settings))
    }

    /// An outbox in memory, for tests and examples.
    pub fn open_in_memory(settings: OutboxSettings) -> Result<Outbox, OutboxError> {
        let conn = Connection::open_in_memory()?;
        Outbox::init(&conn)?;
        Ok(Outbox::with_connection(conn, settings))
    }

    fn with_connection(conn: Connection, settings: OutboxSettings) -> Outbox {
        Outbox {
            conn: Mutex::new(conn),
            settings,
            rng: Mutex::new(fastrand::Rng::new()),
        }
    }

    /// Makes the backoff jitter repeatable.
    pub fn with_jitter_seed(self, seed: u64) -> Outbox {
        *self.rng.lock() = fastrand::Rng::with_seed(seed);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &OutboxSettings {
        &self.settings
    }

    /// Writes `n` for `target` in the caller's transaction, due at once; the caller commits it
    /// with its group state, then wakes the [`Sender`]. Enqueueing the same notification for
    /// the same integration again changes nothing and returns `None`; otherwise the `queued`
    /// event for the alert log.
    pub fn enqueue(
        tx: &Transaction<'_>,
        n: &Notification,
        target: &IntegrationRef,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<NotificationEvent>, OutboxError> {
        insert(tx, n, target, max_age, now, None)
    }

    /// [`Outbox::enqueue`] in a transaction of the outbox's own connection.
    pub fn enqueue_now(
        &self,
        n: &Notification,
        target: &IntegrationRef,
        now: DateTime<Utc>,
    ) -> Result<Option<NotificationEvent>, OutboxError> {
        self.enqueue_many(std::slice::from_ref(&(n.clone(), target.clone())), now)
            .map(|mut events| events.pop())
    }

    /// Enqueues many in one transaction (one fsync); returns the `queued` events.
    pub fn enqueue_many(
        &self,
        items: &[(Notification, IntegrationRef)],
        now: DateTime<Utc>,
    ) -> Result<Vec<NotificationEvent>, OutboxError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut events = Vec::with_capacity(items.len());
        for (n, target) in items {
            events.extend(insert(&tx, n, target, self.settings.max_age, now, None)?);
        }
        tx.commit()?;
        Ok(events)
    }

    /// Claims up to `limit` items due at `now`, oldest due first: each gets a lease until
    /// `now + lease` (so a sender that dies mid-send loses it and it is claimed again) and its
    /// attempt count goes up by one.
    pub fn claim_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Item>, OutboxError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let lease_until = ms(add(now, self.settings.lease));
        let raw: Vec<RawItem> = {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE outbox SET lease_until = ?1, attempts = attempts + 1 WHERE id IN (
                     SELECT id FROM outbox
                     WHERE state = 'pending' AND next_attempt_at <= ?2
                       AND (lease_until IS NULL OR lease_until <= ?2)
                     ORDER BY next_attempt_at, id LIMIT ?3)
                 RETURNING {COLUMNS}"
            ))?;
            let rows =
                stmt.query_map(params![lease_until, ms(now), limit as i64], item_from_row)?;
            rows.collect::<Result<_, _>>()?
        };
        tx.commit()?;
        let mut items = raw
            .into_iter()
            .map(RawItem::decode)
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|i| (i.next_attempt_at, i.id));
        Ok(items)
    }

    /// When the next pending item is due (a claimed one: when its lease ends), if any.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let conn = self.conn.lock();
        let next: Option<i64> = conn.query_row(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM outbox
             WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )?;
        Ok(next.map(from_ms))
    }

    /// Marks a claimed item delivered.
    pub fn mark_delivered(
        &self,
        id: i64,
        response: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NotificationEvent>, OutboxError> {
        self.record(&[(id, Attempt::Delivered { response })], now)
    }

    /// Marks a claimed item failed: with a retryable failure it is due again after the backoff
    /// (at the latest when its `max_age` ends, for a last attempt); with a permanent one, or at
    /// or past its `max_age`, it is dead (and copied once to the fallback receiver).
    pub fn mark_failed(
        &self,
        id: i64,
        error: String,
        response: Option<String>,
        retryable: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<NotificationEvent>, OutboxError> {
        self.record(
            &[(
                id,
                Attempt::Failed {
                    error,
                    response,
                    retryable,
                },
            )],
            now,
        )
    }

    /// Records the outcomes of many attempts in one transaction; returns their events (with
    /// the `queued` events of fallback copies).
    pub fn record(
        &self,
        outcomes: &[(i64, Attempt)],
        now: DateTime<Utc>,
    ) -> Result<Vec<NotificationEvent>, OutboxError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut events = Vec::with_capacity(outcomes.len());
        for (id, attempt) in outcomes {
            let Some(item) = load(&tx, *id)? else {
                return Err(OutboxError::NotFound(*id));
            };
            if item.state != ItemState::Pending {
                // Already settled (a duplicate mark after a lease ran out): nothing to change.
                continue;
            }
            match attempt {
                Attempt::Delivered { response } => {
                    tx.prepare_cached(
                        "UPDATE outbox SET state = 'delivered', delivered_at = ?2,
                         last_response = ?3, lease_until = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, ms(now), response])?;
                    let mut event = NotificationEvent::new(&item, "delivered", now);
                    event.response = response.clone();
                    events.push(event);
                }
                Attempt::Failed {
                    error,
                    response,
                    retryable,
                } => {
                    let unit = self.rng.lock().f64();
                    let delay = backoff_delay(
                        item.attempts,
                        self.settings.backoff_min,
                        self.settings.backoff_max,
                        unit,
                    );
                    // One last attempt at the deadline rather than none past it.
                    let next = add(now, delay).min(item.expires_at);
                    let dead = !retryable || now >= item.expires_at;
                    if dead {
                        tx.prepare_cached(
                            "UPDATE outbox SET state = 'dead', last_error = ?2,
                             last_response = ?3, lease_until = NULL WHERE id = ?1",
                        )?
                        .execute(params![id, error, response])?;
                    } else {
                        tx.prepare_cached(
                            "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3,
                             last_response = ?4, lease_until = NULL WHERE id = ?1",
                        )?
                        .execute(params![
                            id,
                            ms(next),
                            error,
                            response
                        ])?;
                    }
                    let mut event =
                        NotificationEvent::new(&item, if dead { "dead" } else { "failed" }, now);
                    event.error = Some(error.clone());
                    event.response = response.clone();
                    events.push(event);
                    if dead {
                        events.extend(self.fall_back(&tx, &item, now)?);
                    }
                }
            }
        }
        tx.commit()?;
        Ok(events)
    }

    /// Copies a dead item to the fallback receiver's integrations, once per item, and never
    /// from a fallback copy or from the fallback receiver itself.
    fn fall_back(
        &self,
        tx: &Transaction<'_>,
        item: &Item,
        now: DateTime<Utc>,
    ) -> Result<Vec<NotificationEvent>, OutboxError> {
        let Some(fallback) = &self.settings.fallback else {
            return Ok(Vec::new());
        };
        if item.fallback_of.is_some() || item.target.receiver == fallback.receiver {
            return Ok(Vec::new());
        }
        let claimed = tx
            .prepare_cached(
                "UPDATE outbox SET fallback_sent = 1 WHERE id = ?1 AND fallback_sent = 0",
            )?
            .execute([item.id])?;
        if claimed == 0 {
            return Ok(Vec::new());
        }
        let mut n = item.notification.clone();
        n.receiver = fallback.receiver.clone();
        let mut events = Vec::new();
        for (kind, index) in &fallback.integrations {
            let target = IntegrationRef::new(fallback.receiver.clone(), *kind, *index);
            events.extend(insert(
                tx,
                &n,
                &target,
                self.settings.max_age,
                now,
                Some(item.id),
            )?);
        }
        Ok(events)
    }

    /// Puts a dead item back to pending, due at `now`, with a fresh `max_age`; returns its
    /// `queued` event.
    pub fn retry(&self, id: i64, now: DateTime<Utc>) -> Result<NotificationEvent, OutboxError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let item = load(&tx, id)?.ok_or(OutboxError::NotFound(id))?;
        if item.state != ItemState::Dead {
            return Err(OutboxError::NotDead {
                id,
                state: item.state,
            });
        }
        tx.execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, expires_at = ?3,
             lease_until = NULL WHERE id = ?1",
            params![id, ms(now), ms(add(now, self.settings.max_age))],
        )?;
        tx.commit()?;
        Ok(NotificationEvent::new(&item, "queued", now))
    }

    /// One item.
    pub fn get(&self, id: i64) -> Result<Option<Item>, OutboxError> {
        load(&self.conn.lock(), id)
    }

    /// The items in `state` (all when `None`), oldest first.
    pub fn list(&self, state: Option<ItemState>) -> Result<Vec<Item>, OutboxError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE ?1 IS NULL OR state = ?1 ORDER BY id"
        ))?;
        let raw = stmt
            .query_map([state.map(ItemState::as_str)], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(RawItem::decode).collect()
    }

    /// Count and oldest age of each state at `now`.
    pub fn stats(&self, now: DateTime<Utc>) -> Result<Vec<StateStats>, OutboxError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT state, COUNT(*), MIN(created_at) FROM outbox GROUP BY state")?;
        let mut found: BTreeMap<ItemState, (u64, i64)> = BTreeMap::new();
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (state, count, oldest) = row?;
            if let Some(state) = ItemState::parse(&state) {
                found.insert(state, (count.max(0) as u64, oldest));
            }
        }
        Ok(ItemState::ALL
            .into_iter()
            .map(|state| match found.get(&state) {
                Some(&(count, oldest)) => StateStats {
                    state,
                    count,
                    oldest_age_seconds: ((ms(now) - oldest).max(0) as f64) / 1000.0,
                },
                None => StateStats {
                    state,
                    count: 0,
                    oldest_age_seconds: 0.0,
                },
            })
            .collect())
    }

    /// Deletes delivered and dead items enqueued before `before`; returns how many.
    pub fn purge(&self, before: DateTime<Utc>) -> Result<usize, OutboxError> {
        let conn = self.conn.lock();
        Ok(conn.execute(
            "DELETE FROM outbox WHERE state IN ('delivered', 'dead') AND created_at < ?1",
            [ms(before)],
        )?)
    }
}

fn insert(
    tx: &Connection,
    n: &Notification,
    target: &IntegrationRef,
    max_age: Duration,
    now: DateTime<Utc>,
    fallback_of: Option<i64>,
) -> Result<Option<NotificationEvent>, OutboxError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outbox (notification_id, receiver, integration, integration_index, payload,
             created_at, next_attempt_at, expires_at, fallback_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)
         ON CONFLICT DO NOTHING",
    )?;
    let inserted = stmt.execute(params![
        n.id,
        target.receiver,
        target.kind.as_str(),
        target.index as i64,
        encode(n),
        ms(now),
        ms(add(now, max_age)),
        fallback_of,
    ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let item = Item {
        id: tx.last_insert_rowid(),
        target: target.clone(),
        notification: n.clone(),
        state: ItemState::Pending,
        attempts: 0,
        created_at: now,
        next_attempt_at: now,
        expires_at: add(now, max_age),
        last_error: None,
        last_response: None,
        delivered_at: None,
        fallback_of,
    };
    Ok(Some(NotificationEvent::new(&item, "queued", now)))
}

fn load(conn: &Connection, id: i64) -> Result<Option<Item>, OutboxError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?
        .query_row([id], item_from_row)
        .optional()?;
    raw.map(RawItem::decode).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let min = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        // No jitter at the top of the range: 1, 2, 4, … capped at 300.
        let top: Vec<u64> = (1..=12)
            .map(|n| backoff_delay(n, min, max, 1.0).as_secs())
            .collect();
        assert_eq!(top, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        // The bottom of the jitter is half, never below min.
        assert_eq!(backoff_delay(1, min, max, 0.0), min);
        assert_eq!(backoff_delay(4, min, max, 0.0), Duration::from_secs(4));
        assert_eq!(backoff_delay(40, min, max, 0.0), Duration::from_secs(150));
        assert_eq!(
            backoff_delay(u32::MAX, min, max, 0.5),
            Duration::from_secs(225)
        );
    }
}
