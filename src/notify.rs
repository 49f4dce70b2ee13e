//! The notifier: Alertmanager's routing, grouping, inhibition, silences and time intervals on an
//! unchanged `alertmanager.yml`, then delivery by email and webhook through a durable outbox.
//!
//! Notification is a chain of small stages: route → group → inhibit/silence/ack → dedup →
//! outbox → send with retry. The types every stage shares are in [`types`].
//!
//! - [`config`]: `alertmanager.yml` (or tradewatch's inline `notifier.config`), checked as
//!   `amtool check-config` checks it;
//! - [`matcher`], [`route`]: Alertmanager's matchers and routing tree (`notify routes test`);
//! - [`time_interval`], [`inhibit`], [`silence`]: what mutes a notification;
//! - [`dispatch`]: aggregation groups, their timers and the dedup against the notification
//!   log, pure, with time as a parameter;
//! - [`outbox`] (durable items and the sender), [`webhook`] and [`email`] (the channels) and
//!   [`payload`] (Alertmanager's template data and webhook payload for a notification);
//! - [`pipeline`]: the stages at work, with their state in `state.db`;
//! - [`sample`]: a sample notification to try a receiver (`notify test`, `notify template render`).

pub mod ack;
pub mod action;
pub mod config;
pub mod dispatch;
pub mod email;
pub mod escalate;
pub mod inhibit;
pub mod matcher;
pub mod outbox;
pub mod payload;
pub mod pipeline;
pub mod route;
pub mod sample;
pub mod silence;
pub mod time_interval;
pub mod types;
pub mod webhook;

pub use types::{Alert, Notification, NotificationStatus};
