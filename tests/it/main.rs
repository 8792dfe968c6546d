//! Integration tests: the real binary in temp dirs, and the real peers.

mod cli;
mod concurrency;
mod crash;
mod damage;
mod hostile;
mod interop;
mod util;
mod vm;
