//! tradewatch's own telemetry: every internal event that counts is recorded here, in one place,
//! as `tradewatch_*` and `process_*` metrics (DESIGN §4).

use std::sync::Arc;
use std::time::Duration;

use crate::exporter::registry::{Family, MetricType, Registry};

/// Buckets for request and fsync durations: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process's own metrics.
pub struct Telemetry {
    registry: Arc<Registry>,
    events_received: Arc<Family>,
    events_rejected: Arc<Family>,
    events_duplicate: Arc<Family>,
    ingest_duration: Arc<Family>,
    series: Arc<Family>,
    journal_bytes: Arc<Family>,
    journal_fsync: Arc<Family>,
    journal_errors: Arc<Family>,
    collector_duration: Arc<Family>,
    collector_errors: Arc<Family>,
    scrapes: Arc<Family>,
    scrape_duration: Arc<Family>,
    rule_group_duration: Arc<Family>,
    rule_group_last_evaluation: Arc<Family>,
    rule_failures: Arc<Family>,
    alerts: Arc<Family>,
    notifications: Arc<Family>,
    notification_latency: Arc<Family>,
    action_links: Arc<Family>,
    outbox_items: Arc<Family>,
    outbox_oldest: Arc<Family>,
    reload_successful: Arc<Family>,
    reload_success_timestamp: Arc<Family>,
    remote_write_samples: Arc<Family>,
    remote_write_retries: Arc<Family>,
    remote_write_queue: Arc<Family>,
    process: ProcessFamilies,
}

struct ProcessFamilies {
    cpu: Arc<Family>,
    resident: Arc<Family>,
    virtual_memory: Arc<Family>,
    open_fds: Arc<Family>,
    max_fds: Arc<Family>,
    start_time: Arc<Family>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

fn label(name: &str, value: &str) -> String {
    let mut out = String::new();
    crate::model::names::render_labels([(name, Some(value))], &mut out);
    out
}

impl Telemetry {
    /// Registers every self-metric.
    pub fn new() -> Telemetry {
        let registry = Registry::default();
        let reg = |name: &str, kind, help: &str| {
            let unit = name
                .ends_with("_seconds")
                .then_some("seconds")
                .or_else(|| name.ends_with("_bytes").then_some("bytes"));
            registry
                .register(name, kind, help, unit, LATENCY_BUCKETS)
                .expect("self-metric names are unique")
        };
        use MetricType::{Counter, Gauge, Histogram};
        let build = reg(
            "tradewatch_build_info",
            Gauge,
            "tradewatch's version and revision.",
        );
        let mut build_labels = String::new();
        crate::model::names::render_labels(
            [
                ("version", Some(env!("CARGO_PKG_VERSION"))),
                (
                    "revision",
                    Some(option_env!("TRADEWATCH_REVISION").unwrap_or("unknown")),
                ),
            ],
            &mut build_labels,
        );
        build.gauge(&build_labels).expect("no limits").set(1.0);
        let telemetry = Telemetry {
            events_received: reg(
                "tradewatch_events_received",
                Counter,
                "Events received, by type.",
            ),
            events_rejected: reg(
                "tradewatch_events_rejected",
                Counter,
                "Events rejected, by reason.",
            ),
            events_duplicate: reg(
                "tradewatch_events_duplicate",
                Counter,
                "Events acknowledged as duplicates of an earlier id, by type.",
            ),
            ingest_duration: reg(
                "tradewatch_ingest_request_duration_seconds",
                Histogram,
                "Duration of ingest requests, by status code.",
            ),
            series: reg("tradewatch_series", Gauge, "Series held, by family."),
            journal_bytes: reg(
                "tradewatch_journal_bytes",
                Gauge,
                "Bytes held in journal files.",
            ),
            journal_fsync: reg(
                "tradewatch_journal_fsync_duration_seconds",
                Histogram,
                "Duration of journal fsyncs.",
            ),
            journal_errors: reg(
                "tradewatch_journal_errors",
                Counter,
                "Journal writes or fsyncs that failed.",
            ),
            collector_duration: reg(
                "tradewatch_collector_duration_seconds",
                Histogram,
                "Duration of collections, by collector.",
            ),
            collector_errors: reg(
                "tradewatch_collector_errors",
                Counter,
                "Collections that failed or timed out, by collector.",
            ),
            scrapes: reg(
                "tradewatch_scrapes",
                Counter,
                "Scrapes of targets, by target and result.",
            ),
            scrape_duration: reg(
                "tradewatch_scrape_duration_seconds",
                Histogram,
                "Duration of scrapes, by target.",
            ),
            rule_group_duration: reg(
                "tradewatch_rule_group_duration_seconds",
                Histogram,
                "Duration of rule group evaluations, by group.",
            ),
            rule_group_last_evaluation: reg(
                "tradewatch_rule_group_last_evaluation_timestamp_seconds",
                Gauge,
                "When each rule group last evaluated.",
            ),
            rule_failures: reg(
                "tradewatch_rule_evaluation_failures",
                Counter,
                "Rule evaluations that failed, by group.",
            ),
            alerts: reg(
                "tradewatch_alerts",
                Gauge,
                "Alerts held by the rule layer, by state.",
            ),
            notifications: reg(
                "tradewatch_notifications",
                Counter,
                "Notification outcomes, by receiver, integration and outcome.",
            ),
            notification_latency: reg(
                "tradewatch_notification_latency_seconds",
                Histogram,
                "Time from an alert firing to its notification delivered, by integration.",
            ),
            action_links: reg(
                "tradewatch_action_links",
                Counter,
                "Action link requests, by outcome.",
            ),
            outbox_items: reg("tradewatch_outbox_items", Gauge, "Outbox items, by state."),
            outbox_oldest: reg(
                "tradewatch_outbox_oldest_age_seconds",
                Gauge,
                "Age of the oldest outbox item, by state.",
            ),
            reload_successful: reg(
                "tradewatch_config_last_reload_successful",
                Gauge,
                "Whether the last configuration reload succeeded.",
            ),
            reload_success_timestamp: reg(
                "tradewatch_config_last_reload_success_timestamp_seconds",
                Gauge,
                "When the configuration was last loaded successfully.",
            ),
            remote_write_samples: reg(
                "tradewatch_remote_write_samples",
                Counter,
                "Samples of recording rules and ALERTS sent by remote write, by outcome (sent, dropped).",
            ),
            remote_write_retries: reg(
                "tradewatch_remote_write_retries",
                Counter,
                "Remote-write requests that failed and were retried.",
            ),
            remote_write_queue: reg(
                "tradewatch_remote_write_queue_samples",
                Gauge,
                "Samples waiting in the remote-write queue.",
            ),
            process: ProcessFamilies {
                cpu: reg(
                    "process_cpu_seconds",
                    Counter,
                    "Total user and system CPU time spent in seconds.",
                ),
                resident: reg(
                    "process_resident_memory_bytes",
                    Gauge,
                    "Resident memory size in bytes.",
                ),
                virtual_memory: reg(
                    "process_virtual_memory_bytes",
                    Gauge,
                    "Virtual memory size in bytes.",
                ),
                open_fds: reg(
                    "process_open_fds",
                    Gauge,
                    "Number of open file descriptors.",
                ),
                max_fds: reg(
                    "process_max_fds",
                    Gauge,
                    "Maximum number of open file descriptors.",
                ),
                start_time: reg(
                    "process_start_time_seconds",
                    Gauge,
                    "Start time of the process since unix epoch in seconds.",
                ),
            },
            registry: Arc::new(registry),
        };
        telemetry
            .journal_errors
            .get_or_create("")
            .expect("no limits");
        telemetry
    }

    /// The registry holding the self-metrics, refreshed from `/proc` and `trading` first.
    pub fn registry(&self, trading: Option<&Registry>) -> &Registry {
        self.refresh_process();
        if let Some(trading) = trading {
            for family in trading.families() {
                let g = self
                    .series
                    .get_or_create(&label("family", family.name()))
                    .expect("no limits");
                g.set(family.len() as f64);
            }
        }
        &self.registry
    }

    /// The registry of the self-metrics, for the in-process data path (`process_*` as of the
    /// last refresh).
    pub fn self_registry(&self) -> Arc<Registry> {
        self.refresh_process();
        self.registry.clone()
    }

    /// Counts `n` received events of type `kind`.
    pub fn events_received(&self, kind: &str, n: u64) {
        add(&self.events_received, &label("type", kind), n as f64);
    }

    /// Events received so far, of every type.
    pub fn events_received_total(&self) -> u64 {
        let mut total = 0.0;
        self.events_received.for_each(|s| total += s.value());
        total as u64
    }

    /// Counts `n` rejected events for `reason`.
    pub fn events_rejected(&self, reason: &str, n: u64) {
        add(&self.events_rejected, &label("reason", reason), n as f64);
    }

    /// Counts `n` duplicate events of type `kind`.
    pub fn events_duplicate(&self, kind: &str, n: u64) {
        add(&self.events_duplicate, &label("type", kind), n as f64);
    }

    /// Records an ingest request's duration and status.
    pub fn ingest_request(&self, code: u16, took: Duration) {
        let s = self
            .ingest_duration
            .get_or_create(&label("code", itoa::Buffer::new().format(code)))
            .expect("no limits");
        self.ingest_duration.observe(&s, took.as_secs_f64());
    }

    /// Records an fsync's duration.
    pub fn journal_fsync(&self, took: Duration) {
        let s = self.journal_fsync.get_or_create("").expect("no limits");
        self.journal_fsync.observe(&s, took.as_secs_f64());
    }

    /// Counts a failed journal write or fsync.
    pub fn journal_error(&self) {
        add(&self.journal_errors, "", 1.0);
    }

    /// Sets the bytes held in journal files.
    pub fn journal_bytes(&self, bytes: u64) {
        self.journal_bytes
            .get_or_create("")
            .expect("no limits")
            .set(bytes as f64);
    }

    /// Creates `collector`'s error counter at zero, so its rate is defined before a failure.
    pub fn collector_declared(&self, collector: &str) {
        add(&self.collector_errors, &label("collector", collector), 0.0);
    }

    /// Records how long a collection of `collector` took, whether it failed or not.
    pub fn collector_duration(&self, collector: &str, took: Duration) {
        let s = self
            .collector_duration
            .get_or_create(&label("collector", collector))
            .expect("no limits");
        self.collector_duration.observe(&s, took.as_secs_f64());
    }

    /// Counts a failed (or timed-out) collection of `collector`.
    pub fn collector_error(&self, collector: &str) {
        add(&self.collector_errors, &label("collector", collector), 1.0);
    }

    /// Records a scrape of `target`: its `result` (`success` or why it failed) and duration.
    pub fn scrape(&self, target: &str, result: &str, took: Duration) {
        let mut labels = String::new();
        crate::model::names::render_labels(
            [("result", Some(result)), ("target", Some(target))],
            &mut labels,
        );
        add(&self.scrapes, &labels, 1.0);
        let s = self
            .scrape_duration
            .get_or_create(&label("target", target))
            .expect("no limits");
        self.scrape_duration.observe(&s, took.as_secs_f64());
    }

    /// Records one evaluation of rule group `group` (`file;name`): its duration, its time and
    /// how many of its rules failed.
    pub fn rule_group(&self, group: &str, took: Duration, at_secs: f64, failures: usize) {
        let labels = label("group", group);
        let h = self
            .rule_group_duration
            .get_or_create(&labels)
            .expect("no limits");
        self.rule_group_duration.observe(&h, took.as_secs_f64());
        self.rule_group_last_evaluation
            .get_or_create(&labels)
            .expect("no limits")
            .set(at_secs);
        add(&self.rule_failures, &labels, failures as f64);
    }

    /// Sets how many alerts are in `state` (pending, firing).
    pub fn alerts(&self, state: &str, n: usize) {
        self.alerts
            .get_or_create(&label("state", state))
            .expect("no limits")
            .set(n as f64);
    }

    /// Counts a notification outcome (`queued`, `delivered`, `failed`, `dead`) and, for a
    /// delivery, the latency from the alert firing.
    pub fn notification(
        &self,
        receiver: &str,
        integration: &str,
        outcome: &str,
        latency: Option<f64>,
    ) {
        let mut labels = String::new();
        crate::model::names::render_labels(
            [
                ("integration", Some(integration)),
                ("outcome", Some(outcome)),
                ("receiver", Some(receiver)),
            ],
            &mut labels,
        );
        add(&self.notifications, &labels, 1.0);
        if let Some(seconds) = latency {
            let h = self
                .notification_latency
                .get_or_create(&label("integration", integration))
                .expect("no limits");
            self.notification_latency.observe(&h, seconds.max(0.0));
        }
    }

    /// Counts an action link request: `shown` (the confirm page), `done` (acknowledged or
    /// silenced), `bad_signature`, `expired`, `used`, `refused` (the alert no longer fires) or
    /// `error`.
    pub fn action_link(&self, outcome: &str) {
        add(&self.action_links, &label("outcome", outcome), 1.0);
    }

    /// Sets the outbox figures of `state`.
    pub fn outbox(&self, state: &str, count: u64, oldest_age_seconds: f64) {
        let labels = label("state", state);
        self.outbox_items
            .get_or_create(&labels)
            .expect("no limits")
            .set(count as f64);
        self.outbox_oldest
            .get_or_create(&labels)
            .expect("no limits")
            .set(oldest_age_seconds);
    }

    /// Counts `n` samples of remote write by `outcome` (`sent`, `dropped`).
    pub fn remote_write_samples(&self, outcome: &str, n: u64) {
        add(
            &self.remote_write_samples,
            &label("outcome", outcome),
            n as f64,
        );
    }

    /// Counts a remote-write request that failed and will be retried.
    pub fn remote_write_retry(&self) {
        add(&self.remote_write_retries, "", 1.0);
    }

    /// Sets how many samples wait in the remote-write queue.
    pub fn remote_write_queue(&self, samples: usize) {
        self.remote_write_queue
            .get_or_create("")
            .expect("no limits")
            .set(samples as f64);
    }

    /// Records the outcome of loading the configuration at `at_secs` (start or reload).
    pub fn config_loaded(&self, ok: bool, at_secs: f64) {
        let set = |f: &Family, v: f64| f.get_or_create("").expect("no limits").set(v);
        set(&self.reload_successful, if ok { 1.0 } else { 0.0 });
        if ok {
            set(&self.reload_success_timestamp, at_secs);
        }
    }

    fn refresh_process(&self) {
        let Ok(me) = procfs::process::Process::myself() else {
            return;
        };
        let p = &self.process;
        let set = |f: &Family, v: f64| f.get_or_create("").expect("no limits").set(v);
        if let Ok(stat) = me.stat() {
            let tps = procfs::ticks_per_second() as f64;
            set(&p.cpu, (stat.utime + stat.stime) as f64 / tps);
            set(&p.virtual_memory, stat.vsize as f64);
            set(&p.resident, (stat.rss * procfs::page_size()) as f64);
            if let Ok(boot) = procfs::boot_time_secs() {
                set(&p.start_time, boot as f64 + stat.starttime as f64 / tps);
            }
        }
        if let Ok(n) = me.fd_count() {
            set(&p.open_fds, n as f64);
        }
        if let Ok(limits) = me.limits() {
            let max = match limits.max_open_files.soft_limit {
                procfs::process::LimitValue::Value(v) => v as f64,
                procfs::process::LimitValue::Unlimited => f64::INFINITY,
            };
            set(&p.max_fds, max);
        }
    }
}

fn add(family: &Family, labels: &str, v: f64) {
    family.get_or_create(labels).expect("no limits").add(v);
}
