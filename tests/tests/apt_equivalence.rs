//! repokit's APT indexes against apt-ftparchive's for the same files, both
//! sides read by apt's own parser (`tagfile`, python3-apt): the `Packages`
//! stanzas, the `Sources` stanzas, and `Release`'s fields and checksums.
//! Every `.gz` and `.xz` index (gzip members and xz blocks joined from
//! cached chunks) is decompressed by the real `gzip` and `xz` and equals
//! its plain index; apt-get then reads the repository through its `.gz`
//! indexes.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Result, ensure};
use repokit_tests::clients::Apt;
use repokit_tests::tagfile::{self, Paragraph};
use repokit_tests::{Repokit, debs, run_ok};

/// The Release fields apt-ftparchive is given, as repokit writes them for
/// repository `d` of `create_deb_repo`.
const RELEASE_FIELDS: [(&str, &str); 7] = [
    ("Origin", "d"),
    ("Label", "d"),
    ("Suite", "bookworm"),
    ("Codename", "bookworm"),
    ("Architectures", "all amd64"),
    ("Components", "main"),
    ("Acquire-By-Hash", "yes"),
];

/// An index's plain text, after checking that its `.gz` and `.xz` hold the
/// same bytes (decompressed by the real tools); also the number of gzip
/// members of its `.gz`.
fn index_text(plain: &Path) -> Result<(String, usize)> {
    let text = std::fs::read_to_string(plain)?;
    for (tool, ext) in [("gzip", "gz"), ("xz", "xz")] {
        let packed = plain.with_extension(ext);
        let out = run_ok(Command::new(tool).arg("-dc").arg(&packed))?;
        ensure!(
            out == text,
            "{} differs from {}",
            packed.display(),
            plain.display()
        );
    }
    let gz = std::fs::read(plain.with_extension("gz"))?;
    let members = gz.windows(3).filter(|w| w == &[0x1f, 0x8b, 0x08]).count();
    Ok((text, members))
}

/// A checksum list of Release (`hash size path` lines) as a set.
fn listed(value: &str) -> BTreeSet<(String, String, String)> {
    value
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.into(), w.next()?.into(), w.next()?.into()))
        })
        .collect()
}

fn only(mut paragraphs: Vec<Paragraph>) -> Result<Paragraph> {
    ensure!(paragraphs.len() == 1, "{} paragraphs", paragraphs.len());
    Ok(paragraphs.remove(0))
}

#[test]
fn indexes_match_apt_ftparchive_and_apt_reads_the_gzip_ones() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut files = debs::real_debs(200)?;
    files.extend(debs::generated_debs(&tmp.path().join("gen"))?);
    let binaries = files.len();
    let sources = tmp.path().join("src");
    std::fs::create_dir_all(&sources)?;
    files.push(debs::build_source(&sources, "rk-srca", "1.0")?);
    files.push(debs::build_source(&sources, "rk-srcb", "2.1")?);
    let kit = Repokit::new(&tmp.path().join("data"));
    kit.run(&["key", "generate", "k", "--algo", "ed25519"])?;
    let key = tmp.path().join("k.asc");
    std::fs::write(&key, kit.run(&["key", "export", "k"])?)?;
    kit.create_deb_repo("d", Some("k"))?;
    kit.add_files("d", &files)?;
    kit.run(&["publish", "d"])?;
    let out = tmp.path().join("out");
    kit.run(&["export", "d", &out.display().to_string()])?;
    let dist = out.join("dists/bookworm");
    let ftparchive =
        |args: &[&str]| run_ok(Command::new("apt-ftparchive").args(args).current_dir(&out));

    // Packages: the same stanzas, field for field.
    let mut ours = BTreeMap::new();
    let mut members = 0;
    for arch in ["amd64", "all"] {
        let (text, m) = index_text(&dist.join(format!("main/binary-{arch}/Packages")))?;
        members = members.max(m);
        ours.extend(tagfile::by_identity(tagfile::parse(&text)?));
    }
    ensure!(
        members > 1,
        "no index of several chunks: the joined case is untested"
    );
    let theirs = tagfile::by_identity(tagfile::parse(&ftparchive(&["packages", "pool"])?)?);
    assert_eq!(ours.len(), binaries);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (k, fields) in &ours {
        assert_eq!(fields, &theirs[k], "{k}");
    }
    // Architecture: all packages are in every binary index.
    let amd64 = std::fs::read_to_string(dist.join("main/binary-amd64/Packages"))?;
    assert!(amd64.contains("Package: rk-lib\n"));

    // Sources: the same stanzas but for the SHA-512 list apt-ftparchive
    // adds (repokit, like Debian's archive, lists MD5, SHA-1 and SHA-256).
    let (text, _) = index_text(&dist.join("main/source/Sources"))?;
    let ours = tagfile::by_identity(tagfile::parse(&text)?);
    let mut theirs = tagfile::by_identity(tagfile::parse(&ftparchive(&["sources", "pool"])?)?);
    for p in theirs.values_mut() {
        p.remove("Checksums-Sha512");
    }
    assert_eq!(ours.len(), 2);
    assert_eq!(ours, theirs);

    // Release: the same fields, and the same digest and size of every index
    // (apt-ftparchive also lists the Release file it finds in the directory).
    let mut args: Vec<String> = RELEASE_FIELDS
        .iter()
        .flat_map(|(k, v)| {
            [
                "-o".to_string(),
                format!("APT::FTPArchive::Release::{k}={v}"),
            ]
        })
        .collect();
    args.extend(["release".into(), "dists/bookworm".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let theirs = only(tagfile::parse(&ftparchive(&args)?)?)?;
    let ours = only(tagfile::read(&dist.join("Release"))?)?;
    for (k, v) in RELEASE_FIELDS {
        assert_eq!(ours.get(k).map(String::as_str), Some(v), "{k}");
    }
    for list in ["MD5Sum", "SHA1", "SHA256"] {
        let mut want = listed(&theirs[list]);
        want.retain(|(_, _, path)| path != "Release");
        assert_eq!(listed(&ours[list]), want, "{list}");
    }
    let fields = |p: &Paragraph| -> BTreeSet<String> {
        p.keys().filter(|k| *k != "SHA512").cloned().collect()
    };
    assert_eq!(fields(&ours), fields(&theirs));

    // apt-get reads the repository through its gzip indexes.
    let server = kit.serve()?;
    let apt = Apt::new(
        &tmp.path().join("apt"),
        &format!("{}/repos/d", server.url),
        "bookworm",
        "main",
        &key,
    )?;
    let gz = ["-o", "Acquire::CompressionTypes::Order::=gz"];
    let update = Command::new("apt-get")
        .env("APT_CONFIG", apt.config_path())
        .args(gz)
        .args(["-o", "Debug::Acquire::http=true", "update"])
        .output()?;
    let log = String::from_utf8_lossy(&update.stderr);
    ensure!(
        update.status.success()
            && !log
                .lines()
                .any(|l| l.starts_with("W:") || l.starts_with("E:")),
        "apt-get update: {log}"
    );
    // apt asks for each index by the SHA-256 Release lists for it.
    for index in ["main/binary-amd64/Packages.gz", "main/source/Sources.gz"] {
        let (sha, _, _) = listed(&ours["SHA256"])
            .into_iter()
            .find(|(_, _, path)| path == index)
            .expect("listed in Release");
        ensure!(
            log.contains(&format!("by-hash/SHA256/{sha} HTTP")),
            "apt did not fetch {index}:\n{log}"
        );
    }
    let avail = apt.run("apt-cache", &[&gz[..], &["dumpavail"]].concat())?;
    assert_eq!(
        avail.lines().filter(|l| l.starts_with("Package: ")).count(),
        binaries
    );
    let showsrc = apt.run("apt-cache", &[&gz[..], &["showsrc", "rk-srcb"]].concat())?;
    ensure!(showsrc.contains("Version: 2.1"), "{showsrc}");
    Ok(())
}
