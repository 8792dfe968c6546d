//! One module per subcommand.

pub mod add;
pub mod cat;
pub mod gc;
pub mod init;
pub mod inspect;
pub mod ls;
pub mod tag;
pub mod untag;
pub mod verify;
