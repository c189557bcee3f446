//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod connect;
pub(crate) mod duration;
pub(crate) mod echo;
pub(crate) mod publish;
pub(crate) mod serve;
pub(crate) mod token;
