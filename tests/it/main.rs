//! Integration tests: the real binary in temp dirs, and the real peers.

mod cli;
mod concurrency;
mod copy_range;
mod crash;
mod damage;
mod hostile;
mod interop;
mod os_image;
mod tar;
mod util;
mod vm;
