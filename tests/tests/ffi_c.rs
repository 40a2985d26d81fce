//! The C ABI from C: `ffi/tests/c/flow.c`, compiled with
//! `-Wall -Wextra -Werror` against the committed header and the built
//! library, runs the main flow and its error paths under valgrind with no
//! memory errors and no definite or indirect leaks.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, ensure};
use repokit_tests::clients::Dnf;
use repokit_tests::fixtures::leaf_rpm;
use repokit_tests::{Repokit, ffi_lib_dir, have, run_ok};

#[test]
fn c_flow_is_clean_under_valgrind() -> Result<()> {
    ensure!(
        have("valgrind"),
        "valgrind is not installed (apt-get install valgrind)"
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = ffi_lib_dir();
    let tmp = tempfile::tempdir()?;
    let exe = tmp.path().join("flow");
    run_ok(
        Command::new("clang")
            .args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-g"])
            .arg("-I")
            .arg(root.join("ffi/include"))
            .arg(root.join("ffi/tests/c/flow.c"))
            .arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lrepokit")
            .arg("-o")
            .arg(&exe),
    )?;
    let pkg = leaf_rpm(&tmp.path().join("pkgs"), "rk-c", "1.0")?;
    let bad = tmp.path().join("bad.rpm");
    std::fs::write(&bad, "not a package\n")?;
    let export = tmp.path().join("export");
    let out = Command::new("valgrind")
        .args([
            "--quiet",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
        ])
        .arg(&exe)
        .arg(tmp.path().join("data"))
        .arg(&pkg)
        .arg(&bad)
        .arg(&export)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stdout.contains("\nok\n"),
        "flow failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    ensure!(
        export.join("repodata/repomd.xml").is_file(),
        "nothing exported"
    );
    ensure!(
        export.join("repodata/repomd.xml.asc").is_file(),
        "export is not signed"
    );
    let mirror = tmp.path().join("export-mirror");
    ensure!(
        mirror.join("current/repodata/repomd.xml.asc").is_file()
            && mirror.join(".repokit/trace.json").is_file(),
        "nothing synced to the directory mirror"
    );
    // What the C program published, dnf installs: from the export and
    // from the mirror, signatures checked with the key the program made.
    let key = tmp.path().join("ci.asc");
    std::fs::write(
        &key,
        Repokit::new(&tmp.path().join("data")).run(&["key", "export", "ci"])?,
    )?;
    for (i, dir) in [export, mirror.join("current")].iter().enumerate() {
        let dnf = Dnf::new(
            &tmp.path().join(format!("dnf-{i}")),
            "c",
            &format!("file://{}", dir.display()),
            &key,
        )?;
        dnf.run(&["install", "rk-c"])?;
        ensure!(
            dnf.root.join("usr/share/rk-c/VERSION").is_file(),
            "rk-c not installed from {}",
            dir.display()
        );
    }
    Ok(())
}
