//! The facade every front end calls (CLI, server, C ABI): `Repokit` and the
//! request and report types of its operations. The state lives in
//! `engine::kit`, each operation in its module of `ops/`; this module only
//! names them.

pub use crate::engine::kit::{Clock, DEFAULT_GRACE, DEFAULT_TEST_TTL, Repokit};
pub use crate::ops::add::AddReport;
pub use crate::ops::check::{CheckOptions, CheckReport, Problem};
pub use crate::ops::client_config::ClientKind;
pub use crate::ops::composite::CompositeResult;
pub use crate::ops::history::{RevisionSummary, RollbackReport};
pub use crate::ops::ingest::{NoProgress, Progress, Upload};
pub use crate::ops::lifecycle::{CreateRepo, RepoInfo};
pub use crate::ops::promote::{Promote, PromoteReport};
pub use crate::ops::publish::PublishReport;
pub use crate::ops::remove::RemoveReport;
