//! The `repokit` command's parts: arguments, commands, output.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod output;
