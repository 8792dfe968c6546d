//! One module per subcommand.

pub mod add;
pub mod cat;
pub mod export_tar;
pub mod gc;
pub mod import_tar;
pub mod init;
pub mod inspect;
pub mod ls;
pub mod pack;
pub mod tag;
pub mod unpack;
pub mod untag;
pub mod verify;
