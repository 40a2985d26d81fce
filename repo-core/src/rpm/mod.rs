//! The RPM format: reading package headers, rendering yum/dnf repodata, and
//! placing header signatures.
//!
//! `package` turns a package header into [`RpmPackage`], its dependencies
//! filtered by `deps` as createrepo_c filters them; `xml` turns that into
//! the per-package primary/filelists/other fragments that are cached at
//! upload; `repodata` concatenates cached fragments into `repodata/`;
//! `sigheader` decides a re-signed signature header (pure), and `signature`
//! writes it into a package file. None of them touches the store.

pub mod deps;
pub mod package;
pub mod repodata;
pub mod sigheader;
pub mod signature;
pub mod version;
pub mod xml;

pub use deps::Dependency;
pub use package::{FileKind, PackageFile, RpmPackage, RpmSummary};
