//! Traffic for tests, demos and benchmarks: frames built as bytes, sent
//! through AF_PACKET inside a network namespace.

#![deny(missing_docs)]

pub mod frames;
pub mod gen;
pub mod netns;
pub mod send;
