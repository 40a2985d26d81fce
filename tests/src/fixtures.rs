//! Fixture packages, made by a committed program (the rpm crate's builder),
//! never hand-edited.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rpm::{BuildConfig, CompressionType, Dependency, FileOptions, PackageBuilder};

/// A fixed build time, so fixtures are reproducible.
pub const BUILD_TIME: u32 = 1_700_000_000;

fn config() -> BuildConfig {
    BuildConfig::v4()
        .compression(CompressionType::Gzip)
        .source_date(BUILD_TIME)
}

/// The varied corpus for end-to-end and equivalence tests: every dependency
/// kind and flag, `pre` requirements, config/ghost/dir files, symlinks,
/// epochs, changelogs (more than createrepo_c keeps, and equal timestamps),
/// noarch and x86_64. `rk-app` requires `rk-lib >= 1.0`; both install into an
/// empty root.
pub fn varied_rpms(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();

    // An installable pair: app -> lib.
    let mut lib = PackageBuilder::new("rk-lib", "1.2.3", "MIT", "x86_64", "repokit test library");
    lib.using_config(config())
        .release("4.el9")
        .description("A library that rk-app needs.\nSecond line & <markup>.")
        .url("https://example.org/rk-lib")
        .vendor("repokit tests")
        .group("System/Libraries")
        .packager("Tester <tester@example.org>")
        .build_host("builder.example.org")
        .with_file_contents(
            b"lib contents\n".to_vec(),
            FileOptions::new("/usr/lib64/librk.so.1").mode(0o100755),
        )?
        .with_dir_entry(FileOptions::dir("/usr/share/rk-lib"))?
        .with_symlink(FileOptions::symlink("/usr/lib64/librk.so", "librk.so.1"))?
        .provides(Dependency::any("librk.so.1()(64bit)"))
        .add_changelog_entry(
            "Tester <tester@example.org> - 1.2.3-4",
            "- rebuilt",
            1_699_000_000,
        )
        .add_changelog_entry(
            "Tester <tester@example.org> - 1.2.3-3",
            "- first",
            1_698_000_000,
        );
    out.push(write(dir, lib.build()?)?);

    let mut app = PackageBuilder::new(
        "rk-app",
        "2.0",
        "GPL-2.0-or-later",
        "x86_64",
        "repokit test app",
    );
    app.using_config(config())
        .release("1")
        .description("An application.")
        .with_file_contents(
            b"#!app\n".to_vec(),
            FileOptions::new("/usr/bin/rk-app").mode(0o100755),
        )?
        .with_file_contents(
            b"key=value\n".to_vec(),
            FileOptions::new("/etc/rk-app.conf").config().noreplace(),
        )?
        .with_ghost(FileOptions::ghost("/var/log/rk-app.log"))?
        .with_symlink(FileOptions::symlink("/usr/bin/rk", "rk-app"))?
        .requires(Dependency::greater_eq("rk-lib", "1.0"))
        .requires(Dependency::any("librk.so.1()(64bit)"))
        .add_changelog_entry(
            "Tester <tester@example.org> - 2.0-1",
            "- new upstream",
            1_699_500_000,
        );
    out.push(write(dir, app.build()?)?);

    // Every flag kind on every dependency type, pre requirements, an epoch.
    let mut deps = PackageBuilder::new("rk-deps", "3.1", "MIT", "noarch", "dependency flags");
    deps.using_config(config())
        .epoch(7)
        .release("2")
        .requires(Dependency::any("dep-any"))
        .requires(Dependency::eq("dep-eq", "1.0-1"))
        .requires(Dependency::less("dep-lt", "2:3.0"))
        .requires(Dependency::less_eq("dep-le", "4.0"))
        .requires(Dependency::greater("dep-gt", "5.0-2.el9"))
        .requires(Dependency::greater_eq("dep-ge", "1:6.0"))
        .requires(Dependency::script_pre("dep-pre"))
        .requires(Dependency::script_post("dep-post"))
        .requires(Dependency::eq("dep-eq", "1.0-1"))
        .requires(Dependency::any("/usr/bin/rk-deps"))
        .provides(Dependency::eq("virtual-deps", "3.1"))
        .provides(Dependency::any("capability(deps)"))
        .requires(Dependency::any("capability(deps)"))
        .conflicts(Dependency::less("old-deps", "1.0"))
        .obsoletes(Dependency::less_eq("rk-deps-legacy", "2.0"))
        .recommends(Dependency::any("rec-pkg"))
        .suggests(Dependency::greater_eq("sug-pkg", "1"))
        .enhances(Dependency::any("enh-pkg"))
        .supplements(Dependency::eq("sup-pkg", "3"))
        .with_file_contents(
            b"x".to_vec(),
            FileOptions::new("/usr/bin/rk-deps").mode(0o100755),
        )?;
    for i in 0..14u32 {
        // More entries than createrepo_c keeps, two pairs sharing a timestamp.
        let t = 1_690_000_000 - (i / 2) * 86_400 * ((i % 3) + 1);
        deps.add_changelog_entry(
            format!("Dev {i} <dev@example.org>  "),
            format!("- change {i}"),
            t,
        );
    }
    out.push(write(dir, deps.build()?)?);

    // A spread of plain packages: varied names, versions, arches, files.
    let names = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "Quebec", "romeo",
    ];
    for (i, n) in names.iter().enumerate() {
        let arch = if i % 3 == 0 { "noarch" } else { "x86_64" };
        let version = format!("{}.{}.{}", i % 4, i, (i * 7) % 10);
        let mut b = PackageBuilder::new(
            &format!("rk-{n}"),
            &version,
            "MIT",
            arch,
            &format!("package {n}"),
        );
        b.using_config(config()).release(format!("{}.fc40", i + 1));
        if i % 5 == 0 {
            b.epoch(i as u32);
        }
        b.with_file_contents(
            format!("{n}\n").into_bytes(),
            FileOptions::new(format!("/usr/share/rk-{n}/data.txt")),
        )?
        .with_file_contents(
            b"bin".to_vec(),
            FileOptions::new(format!("/usr/sbin/rk-{n}")).mode(0o100755),
        )?
        .with_dir_entry(FileOptions::dir(format!("/etc/rk-{n}.d")))?;
        if i % 2 == 0 {
            b.requires(Dependency::greater(
                format!("rk-{}", names[(i + 1) % names.len()]),
                "0",
            ));
        }
        if i % 4 == 1 {
            b.with_ghost(FileOptions::ghost(format!("/run/rk-{n}.pid")))?;
        }
        b.add_changelog_entry(
            "Packager <p@example.org>",
            format!("- release {version}"),
            1_680_000_000 + i as u32,
        );
        out.push(write(dir, b.build()?)?);
    }
    Ok(out)
}

/// A package with one file and no dependencies: installs into an empty root.
pub fn leaf_rpm(dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut b = PackageBuilder::new(name, version, "MIT", "noarch", &format!("{name} summary"));
    b.using_config(config())
        .release("1")
        .description(format!("{name}, a leaf package."))
        .add_changelog_entry("Tests <tests@example.org>", "- built", BUILD_TIME);
    b.with_file_contents(
        format!("{name} {version}\n").into_bytes(),
        FileOptions::new(format!("/usr/share/{name}/VERSION")),
    )?;
    write(dir, b.build()?)
}

/// `n` leaf packages `rk-00`, `rk-01`, ... in `dir`.
pub fn leaf_rpms(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    (0..n)
        .map(|i| leaf_rpm(dir, &format!("rk-{i:02}"), "1.0"))
        .collect()
}

/// A plain package with `files` files (for large corpora).
pub fn simple_rpm(dir: &Path, name: &str, version: &str, files: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut b = PackageBuilder::new(name, version, "MIT", "x86_64", &format!("{name} summary"));
    b.using_config(config())
        .release("1")
        .description(format!("{name} is a generated package for benchmarks."))
        .requires(Dependency::any("glibc"))
        .provides(Dependency::any(format!("{name}-capability")))
        .add_changelog_entry("Bench <bench@example.org>", "- generated", BUILD_TIME);
    for f in 0..files {
        let path = if f == 0 {
            format!("/usr/bin/{name}")
        } else {
            format!("/usr/share/{name}/file-{f:03}.txt")
        };
        b.with_file_contents(format!("{name} {f}\n").into_bytes(), FileOptions::new(path))?;
    }
    write(dir, b.build()?)
}

fn write(dir: &Path, pkg: rpm::Package) -> Result<PathBuf> {
    let name = pkg.canonical_filename()?;
    let path = dir.join(name);
    pkg.write_file(&path)?;
    Ok(path)
}

/// The directory of the rpm crate's sources (which ship real rpm fixtures).
pub fn rpm_crate_dir() -> Result<PathBuf> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("cargo metadata")?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let pkgs = meta["packages"].as_array().context("packages")?;
    let rpm = pkgs
        .iter()
        .find(|p| p["name"] == "rpm")
        .context("rpm crate not in the dependency graph")?;
    let manifest = PathBuf::from(rpm["manifest_path"].as_str().context("manifest_path")?);
    Ok(manifest.parent().context("rpm dir")?.to_path_buf())
}

/// A real rpm fixture shipped by the rpm crate, by path under `tests/assets/`.
pub fn rpm_crate_fixture(rel: &str) -> Result<PathBuf> {
    let p = rpm_crate_dir()?.join("tests/assets").join(rel);
    anyhow::ensure!(p.is_file(), "missing fixture {}", p.display());
    Ok(p)
}

/// What an rpm file says it is, read with the rpm crate (independently of
/// repokit's reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nevra {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    /// `src` for a source package.
    pub arch: String,
}

impl Nevra {
    pub fn of(path: &Path) -> Result<Nevra> {
        let m = rpm::PackageMetadata::open(path)?;
        let arch = if m.is_source_package() {
            "src"
        } else {
            m.get_arch()?
        };
        Ok(Nevra {
            name: m.get_name()?.to_string(),
            epoch: m.get_epoch().unwrap_or(0),
            version: m.get_version()?.to_string(),
            release: m.get_release()?.to_string(),
            arch: arch.to_string(),
        })
    }

    /// `name epoch:version-release.arch`, as the tests' repoquery prints it.
    pub fn query_line(&self) -> String {
        format!(
            "{} {}:{}-{}.{}",
            self.name, self.epoch, self.version, self.release, self.arch
        )
    }

    /// Where repokit (and a createrepo_c tree laid out alike) serves it.
    pub fn location(&self) -> String {
        let first = self
            .name
            .chars()
            .next()
            .map(|c| c.to_ascii_lowercase())
            .unwrap_or('_');
        format!(
            "Packages/{first}/{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }
}
