//! Explicit limits on untrusted input, passed in by the caller.

use serde::{Deserialize, Serialize};

/// Size limits applied while reading packages. Every limit is checked before
/// the corresponding bytes are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest package file accepted, in bytes.
    pub max_package_bytes: u64,
    /// Largest RPM signature header plus main header, in bytes (index + data).
    pub max_rpm_header_bytes: u64,
    /// Largest number of files listed by one package.
    pub max_files: usize,
    /// Largest `.deb` control member, compressed and decompressed.
    pub max_deb_control_bytes: u64,
    /// Largest `control` file inside it.
    pub max_deb_control_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_package_bytes: 4 << 30,
            max_rpm_header_bytes: 32 << 20,
            max_files: 500_000,
            max_deb_control_bytes: 16 << 20,
            max_deb_control_file_bytes: 1 << 20,
        }
    }
}
