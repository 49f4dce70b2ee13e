//! tradewatch watches a live trading system: an exporter that turns a trading engine's events into
//! Prometheus metrics, and an alert sidecar that evaluates PromQL rules and delivers notifications.
//!
//! An engine written in Rust can record through the trading catalog in-process:
//!
//! ```
//! use tradewatch::exporter::{Catalog, Registry};
//!
//! let registry = Registry::default();
//! let catalog = Catalog::new(&registry, &Default::default());
//! let filled = catalog.orders("engine-1", Some("momentum"), "binance", "buy", "filled").unwrap();
//! filled.inc();
//! catalog.order_latency("engine-1", "binance").unwrap().observe(0.012);
//! let text = registry.encode(tradewatch::exporter::Format::OpenMetrics);
//! assert!(text.contains("trading_orders_total{engine=\"engine-1\",strategy=\"momentum\",venue=\"binance\",side=\"buy\",status=\"filled\"} 1.0"));
//! ```

pub mod alerts;
pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod exporter;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod promql;
pub mod remote;
pub mod roles;
pub mod rules;
pub mod scrape;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod template;
