//! Outputs that frames are handed to.

pub mod pcap;
pub mod writer;
