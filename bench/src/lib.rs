//! Traffic for tests, demos and benchmarks: frames built as bytes, sent
//! through AF_PACKET inside a network namespace.

#![deny(missing_docs)]

pub mod chart;
pub mod clickhouse;
pub mod cpu;
pub mod feedgen;
pub mod frames;
pub mod gen;
pub mod harness;
pub mod netns;
pub mod nfcapd;
pub mod publish;
pub mod receivers;
pub mod report;
pub mod send;
pub mod testbed;
