//! The shared vocabulary: metric and label names, durations, sample values. No I/O.

pub mod duration;
pub mod labels;
pub mod names;
pub mod size;
pub mod value;

pub use duration::PromDuration;
pub use size::ByteSize;
