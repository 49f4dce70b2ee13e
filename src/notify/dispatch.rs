//! The dispatcher as Alertmanager's (`dispatch`, `notify`): alerts are merged into a store,
//! routed, and grouped per route into aggregation groups by `group_by`; a group is flushed
//! `group_wait` after it is created, then every `group_interval`; at a flush its alerts pass
//! inhibition, the route's active and mute time intervals and silences, then the dedup stage
//! of each of the receiver's integrations decides against the notification log whether to
//! notify (new or changed firing alerts, resolved alerts when `send_resolved`, or
//! `repeat_interval` passed). Resolved alerts leave the group once flushed.
//!
//! Pure: no clock, no task; time is a parameter. The caller calls [`Dispatcher::due`] at
//! [`Dispatcher::next_deadline`] and keeps [`Dispatcher::snapshot`] so that after a restart
//! nothing already notified is sent again before its `repeat_interval`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ack::{Ack, AckError, Acks};
use super::config::{AlertmanagerConfig, IntegrationKey};
use super::escalate::{Escalated, EscalationRule, Escalator};
use super::inhibit::Inhibitor;
use super::matcher::label_set_string;
use super::route::{Route, RouteOpts};
use super::silence::Silences;
use super::time_interval::any_contains;
use super::types::{Alert, Notification};
use crate::alerts::Fingerprint;

/// How long a notification-log entry is kept (Alertmanager's `--data.retention`, 120h).
pub const DEFAULT_NFLOG_RETENTION: Duration = Duration::hours(120);

/// How often resolved alerts are dropped from the store (Alertmanager's
/// `--alerts.gc-interval`, 30m). Until then an alert posted again with a start inside its
/// resolved episode is merged with it, as Alertmanager's store merges.
pub const ALERT_GC_INTERVAL: Duration = Duration::minutes(30);

/// How often groups left empty are dropped (Alertmanager's dispatcher maintenance, 30 s).
/// Until then an emptied group keeps its `group_interval` ticks: an alert that fires again
/// soon after its group was resolved is notified at the group's next tick, not at once.
pub const MAINTENANCE_INTERVAL: Duration = Duration::seconds(30);

/// An alert as received, before the notifier fills in what the sender left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incoming {
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Start, if the sender gave one.
    pub starts_at: Option<DateTime<Utc>>,
    /// End, if the sender gave one.
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the expression that produced it.
    pub generator_url: String,
}

impl Incoming {
    /// The alert as Alertmanager's API stores it: updated `now`; a missing start is `now` (or
    /// the end, for an alert sent already resolved); a missing end is `now + resolve_timeout`,
    /// marked as a timeout.
    pub fn into_alert(self, now: DateTime<Utc>, resolve_timeout: std::time::Duration) -> Alert {
        let starts_at = self.starts_at.or(self.ends_at).unwrap_or(now);
        let (ends_at, timeout) = match self.ends_at {
            Some(end) => (end, false),
            None => (
                now + Duration::from_std(resolve_timeout).unwrap_or(Duration::MAX),
                true,
            ),
        };
        Alert {
            labels: self.labels,
            annotations: self.annotations,
            starts_at,
            ends_at,
            updated_at: now,
            generator_url: self.generator_url,
            timeout,
        }
    }
}

/// Alertmanager's `Alert.Merge`: the younger alert (by `updated_at`) wins, keeping the earlier
/// start; a later explicit (not timeout) end of the older one wins while the younger is still
/// firing at `now`, and once both are resolved the later end wins.
pub fn merge(a: &Alert, o: &Alert, now: DateTime<Utc>) -> Alert {
    if o.updated_at < a.updated_at {
        return merge(o, a, now);
    }
    let mut res = o.clone();
    if a.starts_at < o.starts_at {
        res.starts_at = a.starts_at;
    }
    if o.resolved_at(now) {
        if a.resolved_at(now) && a.ends_at > o.ends_at {
            res.ends_at = a.ends_at;
        }
    } else if a.ends_at > o.ends_at && !a.timeout {
        res.ends_at = a.ends_at;
    }
    res
}

/// Alertmanager's order of alerts in a notification: by `job`, then `instance` (alerts that
/// have the label first), then by label set (fewer labels first, then the first differing
/// label).
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    label_set_order(&a.labels, &b.labels)
}

/// `model.LabelSet.Before` as an ordering.
fn label_set_order(
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        match (a.get(name), b.get(name)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

/// One integration that must deliver a flush.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Which of the receiver's integrations.
    pub integration: IntegrationKey,
    /// Whether its copy includes the resolved alerts (else only the firing ones).
    pub send_resolved: bool,
}

/// What one aggregation group sends to its receiver at one flush.
#[derive(Debug, Clone, PartialEq)]
pub struct Flush {
    /// The notification: every alert that passed muting, firing and resolved, in
    /// Alertmanager's order. Firing alerts keep their expected end; a sender that writes
    /// Alertmanager's payloads shows Go's zero time for them, as Alertmanager does.
    pub notification: Notification,
    /// The integrations whose dedup stage let it through and that have something to send.
    pub deliveries: Vec<Delivery>,
    /// Fingerprints of the firing alerts.
    pub firing: BTreeSet<Fingerprint>,
    /// Fingerprints of the resolved alerts.
    pub resolved: BTreeSet<Fingerprint>,
}

impl Flush {
    /// The alerts one delivery sends: all, or only the firing ones without `send_resolved`.
    pub fn alerts_for(&self, delivery: &Delivery) -> Vec<&Alert> {
        let at = self.notification.created_at;
        self.notification
            .alerts
            .iter()
            .filter(|a| delivery.send_resolved || !a.resolved_at(at))
            .collect()
    }
}

/// One entry of the notification log: what an integration of a receiver was last told about
/// a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NflogEntry {
    /// The group key.
    pub group_key: String,
    /// The receiver's name.
    pub receiver: String,
    /// The integration.
    pub integration: IntegrationKey,
    /// When it was notified.
    pub timestamp: DateTime<Utc>,
    /// Fingerprints of the alerts firing then.
    pub firing: BTreeSet<u64>,
    /// Fingerprints of the alerts resolved then.
    pub resolved: BTreeSet<u64>,
    /// When the entry may be forgotten.
    pub expires_at: DateTime<Utc>,
}

type NflogKey = (String, String, IntegrationKey);

/// One aggregation group's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// [`Route::id`] of the route the group belongs to.
    pub route_id: String,
    /// The group key (`{}/{severity="critical"}:{alertname="X"}`).
    pub group_key: String,
    /// The labels the group is formed by.
    pub labels: BTreeMap<String, String>,
    /// The group's alerts.
    pub alerts: Vec<Alert>,
    /// When the group flushes next.
    pub next_flush: DateTime<Utc>,
    /// Whether it has flushed once (its `group_wait` is over).
    pub has_flushed: bool,
}

/// Everything the dispatcher holds but its configuration and silences: for persistence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispatcherState {
    /// Every alert known.
    pub alerts: Vec<Alert>,
    /// The aggregation groups.
    pub groups: Vec<GroupState>,
    /// The notification log.
    pub nflog: Vec<NflogEntry>,
    /// The acknowledgements in force.
    #[serde(default)]
    pub acks: Vec<Ack>,
    /// The escalations settled, per firing episode.
    #[serde(default)]
    pub escalated: Vec<Escalated>,
    /// When groups left empty are next dropped.
    #[serde(default)]
    pub next_maintenance: Option<DateTime<Utc>>,
    /// When resolved alerts are next dropped from the store.
    #[serde(default)]
    pub next_gc: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Group {
    route_id: String,
    opts: RouteOpts,
    key: String,
    labels: BTreeMap<String, String>,
    alerts: BTreeMap<Fingerprint, Alert>,
    next_flush: DateTime<Utc>,
    has_flushed: bool,
}

/// A read-only view of a group, for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertGroup {
    /// The receiver.
    pub receiver: String,
    /// The group key.
    pub group_key: String,
    /// The labels the group is formed by.
    pub labels: BTreeMap<String, String>,
    /// The alerts, in Alertmanager's order.
    pub alerts: Vec<Alert>,
}

/// Alertmanager's dispatcher and notification pipeline up to delivery.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    config: AlertmanagerConfig,
    inhibitor: Inhibitor,
    /// The alerts that match some inhibition rule's source matchers (Alertmanager's source
    /// cache): inhibition looks only at these.
    inhibit_sources: BTreeSet<Fingerprint>,
    alerts: BTreeMap<Fingerprint, Alert>,
    groups: BTreeMap<(String, Fingerprint), Group>,
    nflog: BTreeMap<NflogKey, NflogEntry>,
    silences: Silences,
    nflog_retention: Duration,
    acks: Acks,
    escalator: Escalator,
    /// When groups left empty are next dropped.
    next_maintenance: Option<DateTime<Utc>>,
    /// When resolved alerts are next dropped from the store.
    next_gc: Option<DateTime<Utc>>,
}

fn to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// FNV-1a over bytes from an offset basis.
fn fnv(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = seed;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A notification's stable id: 32 hex digits from the receiver, the route's id, the group key
/// and the flush time (two routes may share a key; their ids differ).
pub fn notification_id(
    receiver: &str,
    route_id: &str,
    group_key: &str,
    at: DateTime<Utc>,
) -> String {
    let ts = at.timestamp_nanos_opt().unwrap_or(i64::MAX).to_string();
    let parts: [&[u8]; 4] = [
        receiver.as_bytes(),
        route_id.as_bytes(),
        group_key.as_bytes(),
        ts.as_bytes(),
    ];
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325, &parts),
        fnv(0x6c62_272e_07bb_0142, &parts)
    )
}

impl Dispatcher {
    /// A dispatcher with no alerts, for this configuration.
    pub fn new(config: AlertmanagerConfig) -> Dispatcher {
        Dispatcher {
            inhibitor: Inhibitor::new(config.inhibit_rules.clone()),
            inhibit_sources: BTreeSet::new(),
            config,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            nflog: BTreeMap::new(),
            silences: Silences::new(),
            nflog_retention: DEFAULT_NFLOG_RETENTION,
            acks: Acks::default(),
            escalator: Escalator::default(),
            next_maintenance: None,
            next_gc: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AlertmanagerConfig {
        &self.config
    }

    /// The silences, read.
    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    /// The silences, to add, update or expire.
    pub fn silences_mut(&mut self) -> &mut Silences {
        &mut self.silences
    }

    /// Takes an alert as received: fills its missing times (`global.resolve_timeout`) and
    /// inserts it.
    pub fn receive(&mut self, incoming: Incoming, now: DateTime<Utc>) {
        let alert = incoming.into_alert(now, self.config.global.resolve_timeout);
        self.insert(alert, now);
    }

    /// Inserts an alert: merged with the stored alert of the same fingerprint when their
    /// active ranges overlap (Alertmanager's store), then put in the group of each route it
    /// matches. A group is created with its first flush `group_wait` away; before a group's
    /// first flush, an alert that started longer than `group_wait` ago makes it flush now.
    pub fn insert(&mut self, alert: Alert, now: DateTime<Utc>) {
        self.maintain(now);
        let fp = alert.fingerprint();
        let alert = match self.alerts.get(&fp) {
            Some(old)
                if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
            {
                merge(old, &alert, now)
            }
            _ => alert,
        };
        self.note_source(&alert);
        self.alerts.insert(fp, alert.clone());
        let routes: Vec<(String, RouteOpts, String)> = self
            .config
            .route
            .matching(&alert.labels)
            .into_iter()
            .map(|r| (r.id().to_owned(), r.opts.clone(), r.key().to_owned()))
            .collect();
        for (route_id, opts, route_key) in routes {
            self.insert_into_group(&alert, route_id, opts, &route_key, now);
        }
    }

    fn insert_into_group(
        &mut self,
        alert: &Alert,
        route_id: String,
        opts: RouteOpts,
        route_key: &str,
        now: DateTime<Utc>,
    ) {
        let labels: BTreeMap<String, String> = alert
            .labels
            .iter()
            .filter(|(name, _)| opts.group_by_all || opts.group_by.contains(*name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let group_fp = Fingerprint::of_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let group_wait = to_chrono(opts.group_wait);
        let group = self
            .groups
            .entry((route_id.clone(), group_fp))
            .or_insert_with(|| Group {
                key: format!("{route_key}:{}", label_set_string(&labels)),
                route_id,
                opts,
                labels,
                alerts: BTreeMap::new(),
                next_flush: now + group_wait,
                has_flushed: false,
            });
        if group.alerts.is_empty() && group.has_flushed && group.next_flush < now {
            // An emptied group's timer kept ticking (Alertmanager's does): its next tick.
            let interval = to_chrono(group.opts.group_interval);
            if interval > Duration::zero() {
                let behind = (now - group.next_flush).num_milliseconds();
                let step = interval.num_milliseconds().max(1);
                let ticks = (behind + step - 1) / step;
                group.next_flush += Duration::milliseconds(ticks.saturating_mul(step));
            } else {
                group.next_flush = now;
            }
        }
        group.alerts.insert(alert.fingerprint(), alert.clone());
        if !group.has_flushed && alert.starts_at + group_wait < now {
            group.next_flush = now;
        }
    }

    /// Alertmanager's dispatcher maintenance, every [`MAINTENANCE_INTERVAL`]: groups left
    /// empty are dropped.
    fn maintain(&mut self, now: DateTime<Utc>) {
        match self.next_maintenance {
            Some(at) if at <= now => {
                self.groups.retain(|_, g| !g.alerts.is_empty());
                self.next_maintenance = Some(now + MAINTENANCE_INTERVAL);
            }
            Some(_) => {}
            None => self.next_maintenance = Some(now + MAINTENANCE_INTERVAL),
        }
    }

    /// Keeps `alert` among the inhibition sources when some rule's source matchers match it.
    fn note_source(&mut self, alert: &Alert) {
        if self
            .inhibitor
            .rules
            .iter()
            .any(|r| r.source_matchers.matches(&alert.labels))
        {
            self.inhibit_sources.insert(alert.fingerprint());
        }
    }

    /// The alerts that may inhibit others.
    fn sources(&self) -> impl Iterator<Item = &Alert> + Clone {
        self.inhibit_sources
            .iter()
            .filter_map(|fp| self.alerts.get(fp))
    }

    /// When [`Dispatcher::due`] next has something to do.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let groups = self
            .groups
            .values()
            .filter(|g| !g.alerts.is_empty())
            .map(|g| g.next_flush)
            .min();
        let maintenance = self
            .groups
            .values()
            .any(|g| g.alerts.is_empty())
            .then_some(self.next_maintenance)
            .flatten();
        let escalation = self.escalator.next_deadline(&self.alerts, &self.acks);
        groups
            .into_iter()
            .chain(maintenance)
            .chain(escalation)
            .min()
    }

    /// Flushes every group whose time has come, at `now`, and returns what must be sent: one
    /// [`Flush`] per group whose receiver has an integration to notify. The notification log
    /// is updated as the flushes are returned.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Flush> {
        self.nflog.retain(|_, e| e.expires_at > now);
        self.maintain(now);
        let mut ready: Vec<(DateTime<Utc>, (String, Fingerprint))> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now && !g.alerts.is_empty())
            .map(|(k, g)| (g.next_flush, k.clone()))
            .collect();
        ready.sort();
        let mut out = Vec::new();
        for (_, key) in ready {
            if let Some(flush) = self.flush(&key, now) {
                out.push(flush);
            }
        }
        out.extend(self.escalations(now));
        // Alertmanager's store drops resolved alerts at its garbage collection.
        match self.next_gc {
            Some(at) if at <= now => {
                self.alerts.retain(|_, a| !a.resolved_at(now));
                let alerts = &self.alerts;
                self.inhibit_sources.retain(|fp| alerts.contains_key(fp));
                self.next_gc = Some(now + ALERT_GC_INTERVAL);
            }
            Some(_) => {}
            None => self.next_gc = Some(now + ALERT_GC_INTERVAL),
        }
        self.acks.retain_current(&self.alerts, now);
        self.escalator.retain_current(&self.alerts);
        out
    }

    /// The escalations (`notifier.escalations`) in force; what was already escalated stays.
    pub fn set_escalations(&mut self, rules: Vec<EscalationRule>) {
        self.escalator.set_rules(rules);
    }

    /// The escalations due at `now`, one flush per alert with the key
    /// `escalation:{labels}`, to every integration of the escalation's receiver.
    fn escalations(&mut self, now: DateTime<Utc>) -> Vec<Flush> {
        let silences = &self.silences;
        let inhibitor = &self.inhibitor;
        let sources = &self.inhibit_sources;
        let alerts = &self.alerts;
        let due = self.escalator.due(
            alerts,
            &self.acks,
            |a| {
                silences.mutes(&a.labels, now)
                    || inhibitor.mutes(
                        &a.labels,
                        sources.iter().filter_map(|fp| alerts.get(fp)),
                        now,
                    )
            },
            now,
        );
        let mut out = Vec::new();
        for (receiver, alert) in due {
            let Some(r) = self.config.receiver(&receiver) else {
                continue;
            };
            let deliveries: Vec<Delivery> = r
                .integrations()
                .into_iter()
                .map(|(integration, send_resolved)| Delivery {
                    integration,
                    send_resolved,
                })
                .collect();
            if deliveries.is_empty() {
                continue;
            }
            let key = format!("escalation:{}", label_set_string(&alert.labels));
            out.push(Flush {
                notification: Notification {
                    id: notification_id(&receiver, "escalation", &key, now),
                    receiver,
                    group_key: key,
                    group_labels: alert.labels.clone(),
                    alerts: vec![alert.clone()],
                    created_at: now,
                },
                deliveries,
                firing: BTreeSet::from([alert.fingerprint()]),
                resolved: BTreeSet::new(),
            });
        }
        out
    }

    fn flush(&mut self, key: &(String, Fingerprint), now: DateTime<Utc>) -> Option<Flush> {
        let group = self.groups.get_mut(key)?;
        group.next_flush = now + to_chrono(group.opts.group_interval);
        group.has_flushed = true;
        if group.alerts.is_empty() {
            return None;
        }
        let mut alerts: Vec<Alert> = group.alerts.values().cloned().collect();
        alerts.sort_by(alert_order);
        let resolved_before_muting: Vec<Fingerprint> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(Alert::fingerprint)
            .collect();
        let group = group.clone();
        let flush = self.pipeline(&group, alerts, now);
        // Resolved alerts were just dealt with (sent or muted): they leave the group. A group
        // left empty stays until the next maintenance, as in Alertmanager.
        if let Some(g) = self.groups.get_mut(key) {
            for fp in resolved_before_muting {
                g.alerts.remove(&fp);
            }
        }
        flush
    }

    /// Inhibition, time intervals and silences, then each integration's dedup.
    fn pipeline(&mut self, group: &Group, alerts: Vec<Alert>, now: DateTime<Utc>) -> Option<Flush> {
        let opts = &group.opts;
        let intervals = |names: &[String]| -> Vec<super::time_interval::TimeInterval> {
            names
                .iter()
                .filter_map(|n| self.config.time_intervals.get(n))
                .flatten()
                .cloned()
                .collect()
        };
        if !opts.active_time_intervals.is_empty()
            && !any_contains(&intervals(&opts.active_time_intervals), now)
        {
            return None;
        }
        if any_contains(&intervals(&opts.mute_time_intervals), now) {
            return None;
        }
        let alerts: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| !self.inhibitor.mutes(&a.labels, self.sources(), now))
            .filter(|a| !self.silences.mutes(&a.labels, now))
            .collect();
        if alerts.is_empty() {
            return None;
        }
        let firing: BTreeSet<Fingerprint> = alerts
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(Alert::fingerprint)
            .collect();
        let resolved: BTreeSet<Fingerprint> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(Alert::fingerprint)
            .collect();
        let firing_raw: BTreeSet<u64> = firing.iter().map(|f| f.0).collect();
        let resolved_raw: BTreeSet<u64> = resolved.iter().map(|f| f.0).collect();
        let receiver = self.config.receiver(&opts.receiver)?;
        let repeat = to_chrono(opts.repeat_interval);
        // Acknowledged: the repeat_interval re-notification waits for a change.
        let acked = !firing.is_empty()
            && alerts
                .iter()
                .filter(|a| !a.resolved_at(now))
                .all(|a| self.acks.covers(a));
        let mut deliveries = Vec::new();
        for (integration, send_resolved) in receiver.integrations() {
            let log_key = (group.key.clone(), opts.receiver.clone(), integration);
            let entry = self.nflog.get(&log_key);
            if !needs_update(
                entry,
                &firing_raw,
                &resolved_raw,
                send_resolved,
                repeat,
                acked,
                now,
            ) {
                continue;
            }
            self.nflog.insert(
                log_key,
                NflogEntry {
                    group_key: group.key.clone(),
                    receiver: opts.receiver.clone(),
                    integration,
                    timestamp: now,
                    firing: firing_raw.clone(),
                    resolved: resolved_raw.clone(),
                    expires_at: now + self.nflog_retention,
                },
            );
            // Without send_resolved, nothing goes out when nothing fires; the log still
            // records that the firing alerts are gone.
            if send_resolved || !firing.is_empty() {
                deliveries.push(Delivery {
                    integration,
                    send_resolved,
                });
            }
        }
        if deliveries.is_empty() {
            return None;
        }
        Some(Flush {
            notification: Notification {
                id: notification_id(&opts.receiver, &group.route_id, &group.key, now),
                receiver: opts.receiver.clone(),
                group_key: group.key.clone(),
                group_labels: group.labels.clone(),
                alerts,
                created_at: now,
            },
            deliveries,
            firing,
            resolved,
        })
    }

    /// Acknowledges the firing alert `fp` at `now`.
    pub fn acknowledge(
        &mut self,
        fp: Fingerprint,
        author: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Ack, AckError> {
        let alert = self
            .alerts
            .get(&fp)
            .filter(|a| !a.resolved_at(now))
            .ok_or_else(|| AckError::UnknownAlert(fp.to_string()))?;
        let ack = Ack::of(alert, None, author, comment, now)?;
        self.acks.insert(ack.clone());
        Ok(ack)
    }

    /// Acknowledges every alert firing at `now` in the groups with key `group_key` (routes
    /// that share a key share the ack).
    pub fn acknowledge_group(
        &mut self,
        group_key: &str,
        author: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Ack>, AckError> {
        let mut acks: BTreeMap<Fingerprint, Ack> = BTreeMap::new();
        for group in self.groups.values().filter(|g| g.key == group_key) {
            for (fp, alert) in &group.alerts {
                if !alert.resolved_at(now) {
                    acks.insert(*fp, Ack::of(alert, Some(group_key), author, comment, now)?);
                }
            }
        }
        if acks.is_empty() {
            return Err(AckError::UnknownGroup(group_key.to_owned()));
        }
        for ack in acks.values() {
            self.acks.insert(ack.clone());
        }
        Ok(acks.into_values().collect())
    }

    /// The acknowledgements in force.
    pub fn acks(&self) -> &Acks {
        &self.acks
    }

    /// Every alert the dispatcher holds.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// The aggregation groups, for the API, sorted by labels then receiver.
    pub fn groups(&self) -> Vec<AlertGroup> {
        let mut out: Vec<AlertGroup> = self
            .groups
            .values()
            .filter(|g| !g.alerts.is_empty())
            .map(|g| {
                let mut alerts: Vec<Alert> = g.alerts.values().cloned().collect();
                alerts.sort_by(alert_order);
                AlertGroup {
                    receiver: g.opts.receiver.clone(),
                    group_key: g.key.clone(),
                    labels: g.labels.clone(),
                    alerts,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            label_set_order(&a.labels, &b.labels).then_with(|| a.receiver.cmp(&b.receiver))
        });
        out
    }

    /// Why an alert with `labels` is muted at `now`: the ids of the silences and the
    /// fingerprints of the alerts inhibiting it (both empty: not muted).
    pub fn muted_by(
        &self,
        labels: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> (BTreeSet<String>, Vec<Fingerprint>) {
        (
            self.silences.silenced_by(labels, now),
            self.inhibitor.inhibited_by(labels, self.sources(), now),
        )
    }

    /// The notification log.
    pub fn nflog(&self) -> impl Iterator<Item = &NflogEntry> {
        self.nflog.values()
    }

    /// The state to persist.
    pub fn snapshot(&self) -> DispatcherState {
        DispatcherState {
            alerts: self.alerts.values().cloned().collect(),
            groups: self
                .groups
                .values()
                .map(|g| GroupState {
                    route_id: g.route_id.clone(),
                    group_key: g.key.clone(),
                    labels: g.labels.clone(),
                    alerts: g.alerts.values().cloned().collect(),
                    next_flush: g.next_flush,
                    has_flushed: g.has_flushed,
                })
                .collect(),
            nflog: self.nflog.values().cloned().collect(),
            acks: self.acks.iter().cloned().collect(),
            escalated: self.escalator.settled().cloned().collect(),
            next_maintenance: self.next_maintenance,
            next_gc: self.next_gc,
        }
    }

    /// What a flush of the groups with `keys` changes, to persist it: those groups and their
    /// notification-log entries, the acks and escalations (no alerts: the groups carry theirs).
    pub fn snapshot_of(&self, keys: &BTreeSet<&str>) -> DispatcherState {
        DispatcherState {
            alerts: Vec::new(),
            groups: self
                .groups
                .values()
                .filter(|g| keys.contains(g.key.as_str()))
                .map(|g| GroupState {
                    route_id: g.route_id.clone(),
                    group_key: g.key.clone(),
                    labels: g.labels.clone(),
                    alerts: g.alerts.values().cloned().collect(),
                    next_flush: g.next_flush,
                    has_flushed: g.has_flushed,
                })
                .collect(),
            nflog: self
                .nflog
                .values()
                .filter(|e| keys.contains(e.group_key.as_str()))
                .cloned()
                .collect(),
            acks: self.acks.iter().cloned().collect(),
            escalated: self.escalator.settled().cloned().collect(),
            next_maintenance: self.next_maintenance,
            next_gc: self.next_gc,
        }
    }

    /// The (route id, group key) of every group held.
    pub fn group_ids(&self) -> Vec<(String, String)> {
        self.groups
            .values()
            .map(|g| (g.route_id.clone(), g.key.clone()))
            .collect()
    }

    /// A dispatcher for `config` with a persisted state: groups of routes that still exist
    /// keep their timers; the alerts of the others are routed again, as on a reload.
    pub fn restore(
        config: AlertmanagerConfig,
        state: DispatcherState,
        silences: Silences,
        now: DateTime<Utc>,
    ) -> Dispatcher {
        let mut d = Dispatcher::new(config);
        d.silences = silences;
        d.next_maintenance = state.next_maintenance;
        d.next_gc = state.next_gc;
        for entry in state.nflog {
            let key = (
                entry.group_key.clone(),
                entry.receiver.clone(),
                entry.integration,
            );
            d.nflog.insert(key, entry);
        }
        for alert in &state.alerts {
            d.note_source(alert);
            d.alerts.insert(alert.fingerprint(), alert.clone());
        }
        let mut orphans = Vec::new();
        for g in state.groups {
            match d.config.route.find(&g.route_id).map(Route::key) {
                Some(route_key) => {
                    let opts = d
                        .config
                        .route
                        .find(&g.route_id)
                        .map(|r| r.opts.clone())
                        .unwrap_or_default();
                    let fp = Fingerprint::of_pairs(
                        g.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    let key = format!("{route_key}:{}", label_set_string(&g.labels));
                    d.groups.insert(
                        (g.route_id.clone(), fp),
                        Group {
                            route_id: g.route_id,
                            opts,
                            key,
                            labels: g.labels,
                            alerts: g.alerts.into_iter().map(|a| (a.fingerprint(), a)).collect(),
                            next_flush: g.next_flush,
                            has_flushed: g.has_flushed,
                        },
                    );
                }
                None => orphans.extend(g.alerts),
            }
        }
        for alert in orphans {
            d.insert(alert, now);
        }
        for ack in state.acks {
            d.acks.insert(ack);
        }
        d.acks.retain_current(&d.alerts, now);
        d.escalator.restore(state.escalated);
        d.escalator.retain_current(&d.alerts);
        d
    }

    /// Applies a new configuration as Alertmanager's reload does: the notification log,
    /// alerts and silences stay; groups are rebuilt from the alerts, with fresh timers.
    pub fn reload(&mut self, config: AlertmanagerConfig, now: DateTime<Utc>) {
        let alerts: Vec<Alert> = std::mem::take(&mut self.alerts).into_values().collect();
        self.inhibitor = Inhibitor::new(config.inhibit_rules.clone());
        self.inhibit_sources.clear();
        self.config = config;
        self.groups.clear();
        for alert in alerts {
            self.insert(alert, now);
        }
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    acked: bool,
    now: DateTime<Utc>,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    !acked && entry.timestamp < now - repeat
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)]) -> Alert {
        let t = DateTime::from_timestamp(0, 0).unwrap();
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: t,
            ends_at: t,
            updated_at: t,
            generator_url: String::new(),
            timeout: false,
        }
    }

    #[test]
    fn order_is_job_instance_then_label_set() {
        let mut alerts = [
            alert(&[("alertname", "b"), ("x", "1")]),
            alert(&[("alertname", "a")]),
            alert(&[("job", "z")]),
            alert(&[("job", "a"), ("instance", "2")]),
            alert(&[("job", "a"), ("instance", "1")]),
            alert(&[("alertname", "a"), ("x", "1")]),
        ];
        alerts.sort_by(alert_order);
        let names: Vec<String> = alerts.iter().map(|a| label_set_string(&a.labels)).collect();
        assert_eq!(
            names,
            [
                "{instance=\"1\", job=\"a\"}",
                "{instance=\"2\", job=\"a\"}",
                "{job=\"z\"}",
                "{alertname=\"a\"}",
                "{alertname=\"a\", x=\"1\"}",
                "{alertname=\"b\", x=\"1\"}",
            ]
        );
    }

    #[test]
    fn merge_keeps_the_earliest_start_and_an_explicit_later_end() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        let mut old = alert(&[("a", "1")]);
        old.starts_at = t(10);
        old.ends_at = t(100);
        old.updated_at = t(10);
        let mut new = old.clone();
        new.starts_at = t(20);
        new.ends_at = t(50);
        new.updated_at = t(20);
        new.annotations.insert("summary".into(), "newer".into());
        // Both firing at 30: the older explicit end rules.
        let merged = merge(&old, &new, t(30));
        assert_eq!((merged.starts_at, merged.ends_at), (t(10), t(100)));
        assert_eq!(merged.annotations["summary"], "newer");
        // The younger one resolved (at 60): its end rules.
        assert_eq!(merge(&new, &old, t(60)).ends_at, t(50));
        // A timeout end never rules.
        old.timeout = true;
        assert_eq!(merge(&new, &old, t(30)).ends_at, t(50));
    }
}
