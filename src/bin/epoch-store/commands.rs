//! One module per subcommand.

pub mod add;
pub mod build;
pub mod cat;
pub mod copy;
pub mod du;
pub mod export_archive;
pub mod export_tar;
pub mod gc;
pub mod import_archive;
pub mod import_legacy;
pub mod import_tar;
pub mod init;
pub mod inspect;
pub mod inspect_remote;
pub mod login;
pub mod ls;
pub mod pack;
mod pack_eci;
pub mod pull;
pub mod push;
pub mod tag;
pub mod unpack;
pub mod untag;
pub mod verify;
