//! The integrations the sender can reach, by receiver, kind and index: the [`Deliver`] the
//! running notifier hands its [`super::Sender`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Attempt, Deliver, IntegrationKind, IntegrationRef, Item};
use crate::notify::email::Email;
use crate::notify::webhook::Webhook;

/// Every configured integration, ready to send.
#[derive(Debug, Default)]
pub struct Channels {
    webhooks: HashMap<IntegrationRef, Webhook>,
    emails: HashMap<IntegrationRef, Email>,
}

impl Channels {
    /// No integrations.
    pub fn new() -> Channels {
        Channels::default()
    }

    /// Adds (or replaces) the webhook integration `at`.
    pub fn add_webhook(&mut self, at: IntegrationRef, webhook: Webhook) {
        self.webhooks.insert(at, webhook);
    }

    /// Adds (or replaces) the email integration `at`.
    pub fn add_email(&mut self, at: IntegrationRef, email: Email) {
        self.emails.insert(at, email);
    }

    /// The webhook integration `at`, if configured.
    pub fn webhook(&self, at: &IntegrationRef) -> Option<&Webhook> {
        self.webhooks.get(at)
    }

    /// The email integration `at`, if configured.
    pub fn email(&self, at: &IntegrationRef) -> Option<&Email> {
        self.emails.get(at)
    }
}

impl Deliver for Channels {
    /// Sends through the item's integration; one that no longer exists (the configuration
    /// changed) is a permanent failure, so the item goes to the fallback receiver.
    async fn deliver(&self, item: &Item, now: DateTime<Utc>) -> Attempt {
        let found = match item.target.kind {
            IntegrationKind::Webhook => self.webhooks.get(&item.target).map(Channel::Webhook),
            IntegrationKind::Email => self.emails.get(&item.target).map(Channel::Email),
        };
        match found {
            Some(Channel::Webhook(webhook)) => webhook.deliver(item, now).await,
            Some(Channel::Email(email)) => email.deliver(item, now).await,
            None => Attempt::Failed {
                error: format!(
                    "receiver {} has no integration {}",
                    item.target.receiver,
                    item.target.integration()
                ),
                response: None,
                retryable: false,
            },
        }
    }
}

enum Channel<'a> {
    Webhook(&'a Webhook),
    Email(&'a Email),
}
