//! The notifier at work: alerts come in (from the rule layer in-process, or posted to
//! `POST /api/v2/alerts`); the dispatcher's flushes are written to the outbox in the same SQLite
//! transaction as the flushed groups and the notification log, before anything is sent; the
//! sender delivers them through the configured channels; every outcome goes to the alert log
//! and the self-metrics. After a restart (graceful or `kill -9`) groups, the notification log
//! and silences come back from `state.db`, so nothing notified is sent again before its
//! `repeat_interval`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokio::sync::{Notify, mpsc, watch};

use super::ack::{Ack, AckError};
use super::action::{ActionLinks, Claims};
use super::config::{AlertmanagerConfig, EmailConfig, IntegrationKey};
use super::dispatch::{Dispatcher, DispatcherState, Flush, GroupState, NflogEntry};
use super::email::{
    ALERTMANAGER_HTML, Email, EmailTarget, EmailTransport, Links, SmtpAuth, SmtpTls, SmtpTlsConfig,
};
use super::escalate::{Escalated, EscalationRule};
use super::outbox::{
    Attempt, Channels, Deliver, Fallback, IntegrationKind, IntegrationRef, Item, NotificationEvent,
    Outbox, OutboxError, OutboxSettings, Sender, write_transaction,
};
use super::silence::Silences;
use super::webhook::{Webhook, WebhookAuth, WebhookTarget};
use super::{Alert, Notification};
use crate::alerts::log::AlertLog;
use crate::config::notifier::{EmailExtras, NotifierConfig};
use crate::config::server::Secret;
use crate::rules::AlertSink;
use crate::telemetry::Telemetry;
use crate::template::alertmanager::NotificationTemplates;

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// `state.db`.
    #[error("failed to use state database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The outbox.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A receiver's integration cannot be built.
    #[error("receiver {receiver}: {message}")]
    Receiver {
        /// The receiver.
        receiver: String,
        /// What is wrong.
        message: String,
    },
    /// A stored row does not read back.
    #[error("state database holds bad notifier state: {0}")]
    Corrupt(String),
}

fn read_secret(path: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Builds every integration of `am`, with tradewatch's extras from `notifier.receivers`.
pub fn channels(
    am: &AlertmanagerConfig,
    extras: &NotifierConfig,
    templates: &NotificationTemplates,
    external_url: &str,
    action_links: Option<&Arc<ActionLinks>>,
) -> Result<Channels, NotifierError> {
    let links: Option<Links> = action_links.map(|links| {
        let links = links.clone();
        Arc::new(move |_: &Notification, alert: &Alert| links.for_alert(alert, Utc::now())) as Links
    });
    let mut channels = Channels::new();
    for receiver in &am.receivers {
        let err = |message: String| NotifierError::Receiver {
            receiver: receiver.name.clone(),
            message,
        };
        let extra = extras
            .receivers
            .get(&receiver.name)
            .and_then(|r| r.webhook.clone());
        for (index, w) in receiver.webhook_configs.iter().enumerate() {
            let url = match (&w.url, &w.url_file) {
                (Some(url), _) => url.clone(),
                (None, Some(file)) => read_secret(file).map_err(err)?.expose().to_owned(),
                (None, None) => return Err(err("webhook_configs: no url".into())),
            };
            let mut target = WebhookTarget::new(url);
            target.send_resolved = w.send_resolved;
            target.max_alerts = usize::try_from(w.max_alerts).unwrap_or(usize::MAX);
            if let Some(basic) = &w.http_config.basic_auth {
                let password = match (&basic.password, &basic.password_file) {
                    (Some(p), _) => Secret::new(p.clone()),
                    (None, Some(f)) => read_secret(f).map_err(err)?,
                    (None, None) => Secret::new(""),
                };
                target.auth = WebhookAuth::Basic {
                    username: basic.username.clone(),
                    password,
                };
            } else if let Some(auth) = &w.http_config.authorization {
                let credentials = match (&auth.credentials, &auth.credentials_file) {
                    (Some(c), _) => Secret::new(c.clone()),
                    (None, Some(f)) => read_secret(f).map_err(err)?,
                    (None, None) => Secret::new(""),
                };
                target.auth = WebhookAuth::Bearer(credentials);
            }
            if let Some(extra) = &extra {
                target.apply_extras(extra).map_err(|e| err(e.to_string()))?;
            }
            let mut webhook =
                Webhook::new(target, templates, external_url).map_err(|e| err(e.to_string()))?;
            if let Some(links) = &links {
                webhook = webhook.with_links(links.clone());
            }
            channels.add_webhook(
                IntegrationRef::new(&receiver.name, IntegrationKind::Webhook, index),
                webhook,
            );
        }
        let email_extra = extras
            .receivers
            .get(&receiver.name)
            .and_then(|r| r.email.clone())
            .unwrap_or_default();
        for (index, e) in receiver.email_configs.iter().enumerate() {
            let target = email_target(e, &email_extra).map_err(err)?;
            let mut email = Email::new(target, templates, &extras.timezone, external_url)
                .map_err(|e| err(e.to_string()))?;
            if let Some(links) = &links {
                email = email.with_links(links.clone());
            }
            channels.add_email(
                IntegrationRef::new(&receiver.name, IntegrationKind::Email, index),
                email,
            );
        }
    }
    Ok(channels)
}

/// An email integration of the routing file, resolved: its password from the file or the
/// environment, its transport (`.eml` files when `files_dir` is set), and tradewatch's
/// phone-sized templates where the file keeps Alertmanager's default body.
fn email_target(e: &EmailConfig, extra: &EmailExtras) -> Result<EmailTarget, String> {
    let transport = match &extra.files_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
            EmailTransport::Files(dir.clone())
        }
        None => {
            let port = e
                .smarthost
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .ok_or_else(|| format!("email_configs: smarthost {:?} has no port", e.smarthost))?;
            let password = match super::email::password_from(extra).map_err(|e| e.to_string())? {
                Some(p) => Some(p),
                None => match (&e.auth_password, &e.auth_password_file) {
                    (Some(p), _) => Some(Secret::new(p.clone())),
                    (None, Some(file)) => Some(read_secret(file)?),
                    (None, None) => None,
                },
            };
            let auth = (!e.auth_username.is_empty()).then(|| SmtpAuth {
                username: e.auth_username.clone(),
                password: password.unwrap_or_else(|| Secret::new("")),
                identity: (!e.auth_identity.is_empty()).then(|| e.auth_identity.clone()),
            });
            EmailTransport::Smtp {
                smarthost: e.smarthost.clone(),
                hello: e.hello.clone(),
                auth,
                tls: SmtpTls::alertmanager(e.require_tls, port),
                tls_config: SmtpTlsConfig {
                    ca_pem: match (&e.tls_config.ca, &e.tls_config.ca_file) {
                        (Some(pem), _) => Some(pem.clone().into_bytes()),
                        (None, Some(file)) => Some(
                            std::fs::read(file)
                                .map_err(|err| format!("cannot read {}: {err}", file.display()))?,
                        ),
                        (None, None) => None,
                    },
                    server_name: e.tls_config.server_name.clone(),
                    insecure_skip_verify: e.tls_config.insecure_skip_verify,
                },
                timeout: Duration::from_secs(30),
            }
        }
    };
    let mut target = EmailTarget::new(&e.to, &e.from, transport);
    target.send_resolved = e.send_resolved;
    let keeps_default = e.html == ALERTMANAGER_HTML && e.text.is_empty();
    if !keeps_default {
        target.html.clone_from(&e.html);
        target.text.clone_from(&e.text);
    }
    for (name, value) in &e.headers {
        if name == "Subject" {
            target.subject.clone_from(value);
        } else {
            target.headers.insert(name.clone(), value.clone());
        }
    }
    Ok(target)
}

/// The outbox settings of `notifier`, with its fallback receiver's integrations.
pub fn outbox_settings(am: &AlertmanagerConfig, notifier: &NotifierConfig) -> OutboxSettings {
    let fallback = notifier.fallback_receiver.as_ref().and_then(|name| {
        let r = am.receivers.iter().find(|r| &r.name == name)?;
        Some(Fallback {
            receiver: name.clone(),
            integrations: r
                .integrations()
                .into_iter()
                .map(|(k, _)| (k.kind, k.index))
                .collect(),
        })
    });
    OutboxSettings::from_config(&notifier.outbox, fallback)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notifier_groups (
    route_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (route_id, group_key)
);
CREATE TABLE IF NOT EXISTS notifier_nflog (
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (group_key, receiver, integration)
);
CREATE TABLE IF NOT EXISTS notifier_silences (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifier_acks (
    fingerprint TEXT PRIMARY KEY,
    ack TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifier_escalations (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifier_action_links_used (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// The notifier's state: the dispatcher, its `state.db` connection and the outbox.
pub struct Notifier {
    dispatcher: Mutex<Dispatcher>,
    db: Mutex<Connection>,
    path: PathBuf,
    outbox: Arc<Outbox>,
    max_age: Duration,
    tick: Notify,
    sender_wake: Mutex<Option<Arc<Notify>>>,
    channels: Arc<std::sync::RwLock<Arc<Channels>>>,
    log: Option<Arc<AlertLog>>,
    telemetry: Option<Arc<Telemetry>>,
    action_links: std::sync::RwLock<Option<Arc<ActionLinks>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("path", &self.path)
            .finish()
    }
}

fn integration_text(k: &IntegrationKey) -> String {
    k.to_string()
}

impl Notifier {
    /// Opens the notifier's tables and the outbox in the database at `path` and restores the
    /// dispatcher's groups, notification log and silences as of `now`.
    pub fn open(
        path: &Path,
        am: AlertmanagerConfig,
        settings: OutboxSettings,
        log: Option<Arc<AlertLog>>,
        telemetry: Option<Arc<Telemetry>>,
        now: DateTime<Utc>,
    ) -> Result<Notifier, NotifierError> {
        let sqlite = |source| NotifierError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        super::outbox::configure(&conn)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        Outbox::init(&conn)?;
        let state = load_state(&conn).map_err(sqlite)??;
        let (state, silences) = state;
        let dispatcher = Dispatcher::restore(am, state, silences, now);
        let max_age = settings.max_age;
        let outbox = Arc::new(Outbox::open(path, settings)?);
        Ok(Notifier {
            dispatcher: Mutex::new(dispatcher),
            db: Mutex::new(conn),
            path: path.to_owned(),
            outbox,
            max_age,
            tick: Notify::new(),
            sender_wake: Mutex::new(None),
            channels: Arc::new(std::sync::RwLock::new(Arc::new(Channels::new()))),
            log,
            telemetry,
            action_links: std::sync::RwLock::new(None),
        })
    }

    /// The outbox.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Runs `f` on the dispatcher (for the API: alerts, groups, silences).
    pub fn with_dispatcher<T>(&self, f: impl FnOnce(&mut Dispatcher) -> T) -> T {
        let mut d = self.dispatcher.lock().expect("dispatcher lock");
        let out = f(&mut d);
        drop(d);
        self.tick.notify_one();
        out
    }

    /// Writes the silences to `state.db` (after the API changed them).
    pub fn save_silences(&self) -> Result<(), NotifierError> {
        let json = {
            let d = self.dispatcher.lock().expect("dispatcher lock");
            serde_json::to_string(d.silences()).expect("silences serialize")
        };
        self.db
            .lock()
            .expect("db lock")
            .execute(
                "INSERT OR REPLACE INTO notifier_silences (id, state) VALUES (1, ?1)",
                params![json],
            )
            .map(|_| ())
            .map_err(|source| NotifierError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// Puts dead outbox item `id` back to pending and wakes the sender; its `queued` event goes
    /// to the alert log.
    pub fn retry(&self, id: i64, now: DateTime<Utc>) -> Result<NotificationEvent, OutboxError> {
        let event = self.outbox.retry(id, now)?;
        if let Some(wake) = &*self.sender_wake.lock().expect("wake lock") {
            wake.notify_one();
        }
        self.record(std::slice::from_ref(&event), now);
        Ok(event)
    }

    /// Takes alerts at `now`.
    pub fn receive(&self, alerts: Vec<Alert>, now: DateTime<Utc>) {
        {
            let mut d = self.dispatcher.lock().expect("dispatcher lock");
            for alert in alerts {
                d.insert(alert, now);
            }
        }
        self.tick.notify_one();
    }

    /// When the dispatcher next has something due.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.dispatcher
            .lock()
            .expect("dispatcher lock")
            .next_deadline()
    }

    /// Flushes what is due at `now`: each notification enqueued for each integration in one
    /// transaction with the flushed groups and notification log entries. Gives the `queued`
    /// events.
    pub fn flush_due(&self, now: DateTime<Utc>) -> Result<Vec<NotificationEvent>, NotifierError> {
        let (flushes, snapshot, live) = {
            let mut d = self.dispatcher.lock().expect("dispatcher lock");
            let flushes = d.due(now);
            if flushes.is_empty() {
                return Ok(Vec::new());
            }
            let keys: std::collections::BTreeSet<&str> = flushes
                .iter()
                .map(|f| f.notification.group_key.as_str())
                .collect();
            let snapshot = d.snapshot_of(&keys);
            (flushes, snapshot, d.group_ids())
        };
        let events = self
            .persist(&flushes, &snapshot, &live, now)
            .map_err(|source| NotifierError::Sqlite {
                path: self.path.clone(),
                source,
            })??;
        if let Some(wake) = &*self.sender_wake.lock().expect("wake lock") {
            wake.notify_one();
        }
        self.record(&events, now);
        Ok(events)
    }

    #[allow(clippy::type_complexity)]
    fn persist(
        &self,
        flushes: &[Flush],
        snapshot: &DispatcherState,
        groups: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<NotificationEvent>, NotifierError>, rusqlite::Error> {
        let mut conn = self.db.lock().expect("db lock");
        let tx = write_transaction(&mut conn)?;
        let mut events = Vec::new();
        for flush in flushes {
            for delivery in &flush.deliveries {
                let mut n: Notification = flush.notification.clone();
                n.alerts = flush.alerts_for(delivery).into_iter().cloned().collect();
                if n.alerts.is_empty() {
                    continue;
                }
                let target = IntegrationRef::new(
                    &n.receiver,
                    delivery.integration.kind,
                    delivery.integration.index,
                );
                match Outbox::enqueue(&tx, &n, &target, self.max_age, now) {
                    Ok(event) => events.extend(event),
                    Err(e) => return Ok(Err(e.into())),
                }
            }
        }
        let flushed: HashSet<(&str, &str)> = flushes
            .iter()
            .map(|f| {
                (
                    f.notification.group_key.as_str(),
                    f.notification.receiver.as_str(),
                )
            })
            .collect();
        let keys: HashSet<&str> = flushed.iter().map(|(k, _)| *k).collect();
        let live: HashSet<(&str, &str)> = groups
            .iter()
            .map(|(route, key)| (route.as_str(), key.as_str()))
            .collect();
        for g in snapshot
            .groups
            .iter()
            .filter(|g| keys.contains(g.group_key.as_str()))
        {
            tx.execute(
                "INSERT OR REPLACE INTO notifier_groups VALUES (?1, ?2, ?3)",
                params![
                    g.route_id,
                    g.group_key,
                    serde_json::to_string(g).expect("group state serializes")
                ],
            )?;
        }
        // Groups the dispatcher dropped (at a maintenance or a reload): drop their rows.
        let stored: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached("SELECT route_id, group_key FROM notifier_groups")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (route, key) in stored {
            if !live.contains(&(route.as_str(), key.as_str())) {
                tx.execute(
                    "DELETE FROM notifier_groups WHERE route_id = ?1 AND group_key = ?2",
                    params![route, key],
                )?;
            }
        }
        for entry in snapshot
            .nflog
            .iter()
            .filter(|e| flushed.contains(&(e.group_key.as_str(), e.receiver.as_str())))
        {
            tx.execute(
                "INSERT OR REPLACE INTO notifier_nflog VALUES (?1, ?2, ?3, ?4)",
                params![
                    entry.group_key,
                    entry.receiver,
                    integration_text(&entry.integration),
                    serde_json::to_string(entry).expect("nflog entry serializes")
                ],
            )?;
        }
        tx.execute(
            "DELETE FROM notifier_nflog WHERE json_extract(entry, '$.expires_at') < ?1",
            params![now.to_rfc3339()],
        )?;
        forget_ended_acks(&tx, snapshot)?;
        tx.execute(
            "INSERT OR REPLACE INTO notifier_escalations (id, state) VALUES (1, ?1)",
            params![serde_json::to_string(&snapshot.escalated).expect("escalations serialize")],
        )?;
        tx.commit()?;
        Ok(Ok(events))
    }

    /// Writes outcome events to the alert log and the self-metrics.
    fn record(&self, events: &[NotificationEvent], now: DateTime<Utc>) {
        if events.is_empty() {
            return;
        }
        if let Some(log) = &self.log {
            // Serialized as declared, `ts` first (the log is read by that prefix).
            if let Err(e) = log.append(now, events) {
                tracing::error!(error = %e, "Alert log could not be written.");
            }
        }
        if let Some(t) = &self.telemetry {
            for e in events {
                t.notification(
                    &e.receiver,
                    e.integration_kind(),
                    &e.outcome,
                    e.latency_seconds(),
                );
            }
        }
    }

    /// Applies a reloaded routing file and its integrations: the dispatcher regroups its alerts
    /// as Alertmanager's reload does (notification log, silences and the outbox stay), and the
    /// sender uses the new integrations from its next item on.
    pub fn reload(&self, am: AlertmanagerConfig, channels: Channels, now: DateTime<Utc>) {
        self.dispatcher
            .lock()
            .expect("dispatcher lock")
            .reload(am, now);
        *self.channels.write().expect("channels lock") = Arc::new(channels);
        self.tick.notify_one();
    }

    /// Runs the dispatcher's timers and the sender over `channels` until stopped.
    pub fn start(self: &Arc<Self>, channels: Channels) -> NotifierTask {
        let (stop, stopped) = watch::channel(false);
        *self.channels.write().expect("channels lock") = Arc::new(channels);
        let sender = Sender::new(
            self.outbox.clone(),
            Arc::new(CurrentChannels(self.channels.clone())),
        );
        *self.sender_wake.lock().expect("wake lock") = Some(sender.waker());
        let (events, mut received) = mpsc::unbounded_channel::<NotificationEvent>();
        let mut sender_stop = stopped.clone();
        let sender_task = tokio::spawn(async move {
            sender
                .run(events, async move {
                    let _ = sender_stop.changed().await;
                })
                .await;
        });
        let me = self.clone();
        let events_task = tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                let mut batch = vec![event];
                while let Ok(more) = received.try_recv() {
                    batch.push(more);
                }
                let me = me.clone();
                let _ = tokio::task::spawn_blocking(move || me.record(&batch, Utc::now())).await;
            }
        });
        let me = self.clone();
        let mut timer_stop = stopped.clone();
        let timer_task = tokio::spawn(async move {
            loop {
                let wait = me
                    .next_deadline()
                    .map(|d| (d - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                    .unwrap_or(Duration::from_secs(60));
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = me.tick.notified() => {}
                        _ = timer_stop.changed() => return,
                    }
                }
                let work = me.clone();
                let flushed = tokio::task::spawn_blocking(move || work.flush_due(Utc::now())).await;
                if let Ok(Err(e)) = flushed {
                    tracing::error!(error = %e, "Notifications could not be queued; will retry.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        let me = self.clone();
        let mut stats_stop = stopped;
        let stats_task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stats_stop.changed() => return,
                }
                if let (Some(t), Ok(stats)) = (&me.telemetry, me.outbox.stats(Utc::now())) {
                    for s in stats {
                        t.outbox(s.state.as_str(), s.count, s.oldest_age_seconds);
                    }
                }
            }
        });
        NotifierTask {
            stop,
            tasks: vec![timer_task, sender_task, stats_task],
            events: events_task,
        }
    }
}

/// The integrations in force, swapped whole by a reload.
struct CurrentChannels(Arc<std::sync::RwLock<Arc<Channels>>>);

impl Deliver for CurrentChannels {
    async fn deliver(&self, item: &Item, now: DateTime<Utc>) -> Attempt {
        let channels = self.0.read().expect("channels lock").clone();
        channels.deliver(item, now).await
    }
}

impl AlertSink for Notifier {
    fn send(&self, alerts: Vec<Alert>) {
        self.receive(alerts, Utc::now());
    }
}

type Loaded = Result<(DispatcherState, Silences), NotifierError>;

fn load_state(conn: &Connection) -> Result<Loaded, rusqlite::Error> {
    let mut groups = Vec::new();
    let mut stmt = conn.prepare("SELECT state FROM notifier_groups")?;
    for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
        match serde_json::from_str::<GroupState>(&row?) {
            Ok(g) => groups.push(g),
            Err(e) => return Ok(Err(NotifierError::Corrupt(format!("group: {e}")))),
        }
    }
    let mut nflog = Vec::new();
    let mut stmt = conn.prepare("SELECT entry FROM notifier_nflog")?;
    for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
        match serde_json::from_str::<NflogEntry>(&row?) {
            Ok(e) => nflog.push(e),
            Err(e) => {
                return Ok(Err(NotifierError::Corrupt(format!(
                    "notification log: {e}"
                ))));
            }
        }
    }
    let silences: Option<String> = conn
        .query_row(
            "SELECT state FROM notifier_silences WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .ok();
    let silences = match silences {
        Some(text) => match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => return Ok(Err(NotifierError::Corrupt(format!("silences: {e}")))),
        },
        None => Silences::default(),
    };
    let mut alerts: BTreeMap<crate::alerts::Fingerprint, Alert> = BTreeMap::new();
    for g in &groups {
        for a in &g.alerts {
            alerts.insert(a.fingerprint(), a.clone());
        }
    }
    Ok(Ok((
        DispatcherState {
            alerts: alerts.into_values().collect(),
            groups,
            nflog,
            acks: load_acks(conn)?,
            escalated: load_escalated(conn),
            // The maintenance and garbage collection start over, as at Alertmanager's start.
            next_maintenance: None,
            next_gc: None,
        },
        silences,
    )))
}

// Acknowledgement (DESIGN §3): rows written by the request, dropped with the flush after the
// alert's episode ended.

fn load_acks(conn: &Connection) -> Result<Vec<Ack>, rusqlite::Error> {
    let mut stmt = conn.prepare("SELECT ack FROM notifier_acks")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut acks = Vec::new();
    for row in rows {
        // An unreadable row is an ack lost, not a reason to refuse to start.
        match serde_json::from_str::<Ack>(&row?) {
            Ok(ack) => acks.push(ack),
            Err(e) => tracing::warn!(error = %e, "Ignoring an unreadable acknowledgement."),
        }
    }
    Ok(acks)
}

fn forget_ended_acks(
    tx: &rusqlite::Transaction<'_>,
    snapshot: &DispatcherState,
) -> Result<(), rusqlite::Error> {
    let live: HashSet<&str> = snapshot
        .acks
        .iter()
        .map(|a| a.fingerprint.as_str())
        .collect();
    let stored: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT fingerprint FROM notifier_acks")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for fp in stored.iter().filter(|fp| !live.contains(fp.as_str())) {
        tx.execute(
            "DELETE FROM notifier_acks WHERE fingerprint = ?1",
            params![fp],
        )?;
    }
    Ok(())
}

impl Notifier {
    /// Acknowledges the firing alert `fp` (or, with `group_key`, every alert firing in that
    /// group) at `now`, and writes the acks to `state.db` before answering.
    pub fn acknowledge(
        &self,
        target: AckTarget,
        author: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Ack>, AckFailure> {
        let acks = {
            let mut d = self.dispatcher.lock().expect("dispatcher lock");
            match &target {
                AckTarget::Alert(fp) => d.acknowledge(*fp, author, comment, now).map(|a| vec![a]),
                AckTarget::Group(key) => d.acknowledge_group(key, author, comment, now),
            }
        }?;
        let mut conn = self.db.lock().expect("db lock");
        let mut write = || -> Result<(), rusqlite::Error> {
            let tx = write_transaction(&mut conn)?;
            for ack in &acks {
                tx.execute(
                    "INSERT OR REPLACE INTO notifier_acks (fingerprint, ack) VALUES (?1, ?2)",
                    params![
                        ack.fingerprint,
                        serde_json::to_string(ack).expect("ack serializes")
                    ],
                )?;
            }
            tx.commit()
        };
        write().map_err(|source| {
            AckFailure::Store(NotifierError::Sqlite {
                path: self.path.clone(),
                source,
            })
        })?;
        self.tick.notify_one();
        Ok(acks)
    }

    /// The acknowledgements in force, by fingerprint.
    pub fn acks(&self) -> Vec<Ack> {
        let d = self.dispatcher.lock().expect("dispatcher lock");
        d.acks().iter().cloned().collect()
    }
}

fn load_escalated(conn: &Connection) -> Vec<Escalated> {
    let text: Option<String> = conn
        .query_row(
            "SELECT state FROM notifier_escalations WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .ok();
    // Unreadable, escalations already sent may be sent again: said, not fatal.
    text.and_then(|t| {
        serde_json::from_str(&t)
            .map_err(|e| tracing::warn!(error = %e, "Ignoring unreadable escalation state."))
            .ok()
    })
    .unwrap_or_default()
}

impl Notifier {
    /// Puts `notifier.escalations` in force (at start and on reload).
    pub fn set_escalations(&self, rules: Vec<EscalationRule>) {
        self.with_dispatcher(|d| d.set_escalations(rules));
    }
}

/// What an acknowledgement is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckTarget {
    /// One alert, by fingerprint.
    Alert(crate::alerts::Fingerprint),
    /// Every alert firing in a group, by group key.
    Group(String),
}

/// Why an acknowledgement failed.
#[derive(Debug, thiserror::Error)]
pub enum AckFailure {
    /// Refused: unknown alert or group, or bad input.
    #[error(transparent)]
    Refused(#[from] AckError),
    /// It could not be stored.
    #[error(transparent)]
    Store(NotifierError),
}

/// The notifier's running tasks.
pub struct NotifierTask {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: tokio::task::JoinHandle<()>,
}

impl NotifierTask {
    /// Stops the timers and the sender (after the batch in flight is recorded).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = self.events.await;
    }
}

/// What an action link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionDone {
    /// The alert is acknowledged.
    Acknowledged,
    /// A silence of the alert's labels is in force.
    Silenced {
        /// The silence.
        id: String,
        /// Its end.
        until: DateTime<Utc>,
    },
}

/// Why an action link did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ActionFailure {
    /// The link was used before.
    #[error("this link was already used")]
    Used,
    /// The action cannot be done (the alert no longer fires).
    #[error("{0}")]
    Refused(String),
    /// It could not be stored.
    #[error(transparent)]
    Store(NotifierError),
}

impl Notifier {
    /// Puts action links in force (at start), for the API to check tokens with.
    pub fn set_action_links(&self, links: Option<Arc<ActionLinks>>) {
        *self.action_links.write().expect("links lock") = links;
    }

    /// The action links in force, if configured.
    pub fn action_links(&self) -> Option<Arc<ActionLinks>> {
        self.action_links.read().expect("links lock").clone()
    }

    /// Whether the link with this id was used.
    pub fn action_link_used(&self, id: &str) -> Result<bool, NotifierError> {
        let conn = self.db.lock().expect("db lock");
        conn.query_row(
            "SELECT COUNT(*) FROM notifier_action_links_used WHERE id = ?1",
            [id],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|source| self.sqlite(source))
    }

    fn sqlite(&self, source: rusqlite::Error) -> NotifierError {
        NotifierError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Does what a verified action link says, once: the link's id is written to `state.db`
    /// first (a second use, even concurrent, finds it and is refused), then the alert is
    /// acknowledged or silenced; when that fails the id is released, so the link still works.
    pub fn perform_action(
        &self,
        claims: &Claims,
        links: &ActionLinks,
        now: DateTime<Utc>,
    ) -> Result<ActionDone, ActionFailure> {
        let action = serde_json::to_value(claims.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        {
            let mut conn = self.db.lock().expect("db lock");
            let mut reserve = || -> Result<usize, rusqlite::Error> {
                let tx = write_transaction(&mut conn)?;
                // Expired links are refused before they get here: their rows are not needed.
                tx.execute(
                    "DELETE FROM notifier_action_links_used WHERE expires_at < ?1",
                    [now.timestamp()],
                )?;
                let inserted = tx.execute(
                    "INSERT OR IGNORE INTO notifier_action_links_used
                     (id, action, fingerprint, used_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        claims.id,
                        action,
                        claims.fingerprint,
                        now.timestamp(),
                        claims.expires
                    ],
                )?;
                tx.commit()?;
                Ok(inserted)
            };
            match reserve() {
                Ok(0) => return Err(ActionFailure::Used),
                Ok(_) => {}
                Err(source) => return Err(ActionFailure::Store(self.sqlite(source))),
            }
        }
        let done = self.act(claims, links, now);
        if done.is_err() {
            let conn = self.db.lock().expect("db lock");
            if let Err(e) = conn.execute(
                "DELETE FROM notifier_action_links_used WHERE id = ?1",
                [&claims.id],
            ) {
                tracing::error!(error = %e, "An action link could not be released.");
            }
        }
        done
    }

    fn act(
        &self,
        claims: &Claims,
        links: &ActionLinks,
        now: DateTime<Utc>,
    ) -> Result<ActionDone, ActionFailure> {
        let comment = format!("{} from a notification link", claims.action.label());
        match links.silence_end(claims.action, now) {
            None => {
                let fp = super::ack::parse_fingerprint(&claims.fingerprint)
                    .map_err(|e| ActionFailure::Refused(e.to_string()))?;
                match self.acknowledge(AckTarget::Alert(fp), "action link", &comment, now) {
                    Ok(_) => Ok(ActionDone::Acknowledged),
                    Err(AckFailure::Refused(e)) => Err(ActionFailure::Refused(e.to_string())),
                    Err(AckFailure::Store(e)) => Err(ActionFailure::Store(e)),
                }
            }
            Some(until) => {
                let mut matchers = Vec::with_capacity(claims.labels.len());
                for (name, value) in &claims.labels {
                    matchers.push(
                        super::matcher::Matcher::new(super::matcher::MatchOp::Equal, name, value)
                            .map_err(|e| ActionFailure::Refused(e.to_string()))?,
                    );
                }
                let silence = super::silence::Silence {
                    id: String::new(),
                    matchers,
                    starts_at: now,
                    ends_at: until,
                    created_by: "action link".into(),
                    comment,
                    updated_at: now,
                };
                let id = self
                    .with_dispatcher(|d| d.silences_mut().set(silence, now))
                    .map_err(|e| ActionFailure::Refused(e.to_string()))?;
                self.save_silences().map_err(ActionFailure::Store)?;
                Ok(ActionDone::Silenced { id, until })
            }
        }
    }
}
