//! The notifier: Alertmanager's routing, grouping, inhibition, silences and time intervals on an
//! unchanged `alertmanager.yml`, then delivery by email and webhook through a durable outbox.
//!
//! Notification is a chain of small stages: route → group → inhibit/silence/ack → dedup →
//! outbox → send with retry. The types every stage shares are in [`types`]; delivery is
//! [`outbox`] (durable items and the sender), [`webhook`] and [`email`] (the channels) and
//! [`payload`] (Alertmanager's template data and webhook payload for a notification).

pub mod config;
pub mod dispatch;
pub mod email;
pub mod inhibit;
pub mod matcher;
pub mod outbox;
pub mod payload;
pub mod pipeline;
pub mod route;
pub mod silence;
pub mod time_interval;
pub mod types;
pub mod webhook;

pub use types::{Alert, Notification, NotificationStatus};
