//! Outputs that frames are handed to.

pub mod monitor;
pub mod pcap;
pub mod writer;
