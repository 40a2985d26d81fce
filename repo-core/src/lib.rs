//! repokit's library: package formats, signing, the content-addressed store
//! and atomic publication. It knows nothing about HTTP.
//!
//! Two layers: the *formats* (`rpm`, `sign`, `publish`, `time`) are pure
//! functions of bytes and explicit inputs; the *store* (`store`, `repos`,
//! `keyring`) does all IO.
#![forbid(unsafe_code)]

pub mod access;
pub mod chunks;
pub mod clientconf;
pub mod deb;
pub(crate) mod engine;
pub mod error;
pub mod keyring;
pub mod limits;
pub mod metapack;
pub mod model;
pub mod names;
pub mod ops;
pub mod publish;
pub mod repos;
pub mod rpm;
pub mod sign;
pub mod store;
pub mod time;

pub use error::{Error, ErrorKind, Result};
pub use ops::gc;
pub use repos::Repokit;
