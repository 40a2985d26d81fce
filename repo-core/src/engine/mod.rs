//! Internals the operations share: parallel work, revision building and
//! reading, rendered index output. Leaf modules as far as the formats go:
//! no format imports them.

pub mod caches;
pub mod kit;
pub mod rendered;
pub(crate) mod retired;
pub mod revisions;
pub mod work;
