//! Integration tests: the real binary in temp dirs, and the real peers.

mod arch;
mod archive;
mod cli;
mod cocoon_oracle;
mod cocoon_pack;
mod cocoon_pull;
mod concurrency;
mod copy_range;
mod crash;
mod damage;
mod defects;
mod du;
mod go_zstd;
mod hostile;
mod inputs;
mod interop;
mod legacy;
mod media;
mod media_unpack;
mod oras;
mod os_image;
mod stumbles;
mod tar;
mod transfer;
mod util;
mod vm;
