//! One evaluation of a recording rule after its query, as Prometheus's `RecordingRule.Eval`:
//! each sample is renamed to the record name and given the rule's labels.

use std::collections::HashSet;

use crate::model::labels::{Labels, METRIC_NAME};
use crate::promql::InstantSample;

use super::rule::RecordingRule;

/// Why an evaluation of a recording rule failed; nothing is written then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// Two samples gave the same labels.
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateLabels,
    /// More series than the group's `limit`.
    #[error("exceeded limit of {limit} with {count} series")]
    LimitExceeded {
        /// The group's limit.
        limit: u64,
        /// The number of series the rule produced.
        count: usize,
    },
}

impl RecordingRule {
    /// The series to write for one evaluation's result `samples`: `__name__` set to the record
    /// name and the rule's labels set (an empty value removes the label). With `limit` above
    /// zero, more series than `limit` fail.
    pub fn apply(
        &self,
        samples: &[InstantSample],
        limit: u64,
    ) -> Result<Vec<InstantSample>, RecordingError> {
        let mut seen: HashSet<Labels> = HashSet::with_capacity(samples.len());
        let mut out = Vec::with_capacity(samples.len());
        for sample in samples {
            let mut builder = sample.labels.builder();
            builder.set(METRIC_NAME, &self.record);
            for (name, value) in &self.labels {
                if value.is_empty() {
                    builder.del(name);
                } else {
                    builder.set(name, value);
                }
            }
            let labels = builder.build();
            if !seen.insert(labels.clone()) {
                return Err(RecordingError::DuplicateLabels);
            }
            out.push(InstantSample {
                labels,
                t: sample.t,
                f: sample.f,
            });
        }
        if limit > 0 && out.len() as u64 > limit {
            return Err(RecordingError::LimitExceeded {
                limit,
                count: out.len(),
            });
        }
        Ok(out)
    }
}
