//! The operations of `Repokit`, one module each, in the spirit of cargo's
//! `ops/`: each owns its steps as an `impl Repokit` block over the shared
//! state in `repos`, and calls the shared internals in `engine` and the
//! formats and the store below them. No format or store module imports an
//! operation.

pub mod add;
pub mod check;
pub(crate) mod clashes;
pub mod client_config;
pub mod composite;
pub mod expire;
pub mod gc;
pub mod history;
pub mod ingest;
pub mod lifecycle;
pub mod promote;
pub mod publish;
pub mod remove;
pub mod resolve;

#[cfg(test)]
mod tests;
