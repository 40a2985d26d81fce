//! The Debian format: reading `.deb` control data and rendering APT indexes
//! (`Packages`, `Release`, `InRelease`, by-hash copies).
//!
//! `package` reads a `.deb` (an ar archive) down to its `control` file,
//! with limits on every size; `index` renders a package's `Packages` stanza
//! (cached at upload) and a whole `dists/<codename>/` tree. Neither touches
//! the store.

pub mod chunk;
pub mod index;
pub mod package;
pub mod source;

pub use package::DebPackage;
