//! One module per subcommand.

pub(crate) mod connect;
pub(crate) mod echo;
