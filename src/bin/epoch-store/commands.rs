//! One module per subcommand.

pub mod add;
pub mod cat;
pub mod gc;
pub mod init;
pub mod inspect;
pub mod ls;
pub mod pack;
pub mod tag;
pub mod unpack;
pub mod untag;
pub mod verify;
