//! Layer 7, transport: moving refs and everything they reach between
//! layouts (a USB stick, an air-gapped share), checked against what the
//! destination filesystem can take.

pub mod copy;
pub mod platforms;
pub mod registry;
