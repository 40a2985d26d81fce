//! One function per command (the simple ones are inline in `run`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use repo_core::Repokit;
use repo_core::access::{self, Scope};
use repo_core::names::{KeyName, RepoName};
use repo_core::repos::{
    AddReport, CreateRepo, NoProgress, Progress, Promote, PublishReport, Upload,
};
use repo_core::sign::KeyAlgo;
use repo_core::time::{parse_duration, unix};
use serde::Serialize;

use super::args::{KeyCommand, RepoCommand, TokenCommand};
use super::output::{Bar, expand, lines, print, published_line};

/// `repokit rollback`.
pub(crate) async fn cmd_rollback(
    kit: &Repokit,
    json: bool,
    name: String,
    revision: String,
) -> anyhow::Result<()> {
    let report = kit.rollback(&RepoName::new(name)?, &revision).await?;
    print(json, &report, |r| {
        format!(
            "{}: head is now {} (the packages of {})",
            r.repo, r.revision, r.restored
        )
    })
}

/// `repokit history`.
pub(crate) async fn cmd_history(
    kit: &Repokit,
    json: bool,
    name: String,
    limit: usize,
) -> anyhow::Result<()> {
    let revs = kit.revisions(&RepoName::new(name)?, limit).await?;
    print(json, &revs, |rs| {
        lines(rs, |r| {
            format!("{}\t{}\t{} packages", r.seq, r.id, r.packages)
        })
    })
}

/// `repokit audit`.
pub(crate) async fn cmd_audit(
    kit: &Repokit,
    json: bool,
    repo: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let repo = repo.map(RepoName::new).transpose()?;
    let log = access::audit_log(kit.store(), repo.as_ref(), limit).await?;
    print(json, &log, |l| {
        lines(l, |r| {
            format!(
                "{}\t{}\t{}\t{}",
                r.id,
                r.actor.name,
                r.action,
                r.repo.as_ref().map(|n| n.as_str()).unwrap_or("-")
            )
        })
    })
}

/// `repokit export`.
pub(crate) async fn cmd_export(
    kit: &Repokit,
    json: bool,
    name: String,
    dir: PathBuf,
) -> anyhow::Result<()> {
    let report = repo_sync::export::export(kit, &RepoName::new(name)?, &dir).await?;
    print(json, &report, |r| {
        format!(
            "{}: {} -> {} ({} files)",
            r.repo,
            r.publication,
            r.target.display(),
            r.files
        )
    })
}

/// `repokit serve`: seeds the admin token if one is given, binds, says
/// where, and serves until stopped.
pub(crate) async fn cmd_serve(
    kit: Repokit,
    data: &Path,
    listen: String,
    admin_token: Option<String>,
    options: repo_server::Options,
) -> anyhow::Result<()> {
    if let Some(secret) = admin_token {
        access::seed_token(
            kit.store(),
            &secret,
            "admin",
            vec![Scope::Admin],
            unix(kit.now()),
        )
        .await
        .context("REPOKIT_ADMIN_TOKEN")?;
    }
    let listener =
        std::net::TcpListener::bind(&listen).with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %data.display(), "serving");
    // The resolved address on stdout lets callers use port 0.
    println!("listening on http://{addr}");
    repo_server::serve(Arc::new(kit), listener, options).await?;
    Ok(())
}

/// `repokit key ...`.
pub(crate) async fn key_command(
    kit: &Repokit,
    json: bool,
    command: KeyCommand,
) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate { name, uid, algo } => {
            let algo: KeyAlgo = algo.parse()?;
            let info = kit
                .keyring()
                .generate(&KeyName::new(name)?, &uid, algo, kit.now())?;
            print(json, &info, |i| format!("{} {}", i.name, i.fingerprint))
        }
        KeyCommand::Export { name } => {
            let armored = kit.keyring().export_public(&KeyName::new(name)?)?;
            print!("{}", String::from_utf8_lossy(&armored));
            Ok(())
        }
        KeyCommand::List => {
            let keys = kit.keyring().list()?;
            print(json, &keys, |ks| {
                ks.iter()
                    .map(|k| format!("{} {}", k.name, k.fingerprint))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

/// `repokit repo ...`.
pub(crate) async fn repo_command(
    kit: &Repokit,
    json: bool,
    command: RepoCommand,
) -> anyhow::Result<()> {
    match command {
        RepoCommand::Create {
            name,
            format,
            sign_with,
            compression,
            vendor_signatures,
            codename,
            component,
            arch,
            role,
            ttl,
            members,
        } => {
            let info = kit
                .create_repo(CreateRepo {
                    name: RepoName::new(name)?,
                    format: format.parse()?,
                    role: role.parse()?,
                    sign_with: sign_with.map(KeyName::new).transpose()?,
                    compression: compression.parse()?,
                    vendor_signatures: vendor_signatures.parse()?,
                    codename,
                    component,
                    architectures: arch,
                    ttl: ttl.as_deref().map(parse_duration).transpose()?,
                    members: members
                        .into_iter()
                        .map(RepoName::new)
                        .collect::<Result<_, _>>()?,
                })
                .await?;
            print(json, &info, |i| format!("created {}", i.config.name))
        }
        RepoCommand::List => {
            let repos = kit.repos().await?;
            print(json, &repos, |rs| {
                rs.iter()
                    .map(|r| {
                        format!(
                            "{}\t{:?}\t{} packages\t{}",
                            r.config.name,
                            r.config.format,
                            r.packages,
                            r.published.as_deref().unwrap_or("unpublished")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        RepoCommand::Show { name } => {
            let info = kit.repo(&RepoName::new(name)?).await?;
            print(json, &info, |i| {
                serde_json::to_string_pretty(i).unwrap_or_default()
            })
        }
        RepoCommand::Delete { name } => {
            let name = RepoName::new(name)?;
            kit.delete_repo(&name).await?;
            print(json, &serde_json::json!({"deleted": name}), |_| {
                format!("deleted {name}")
            })
        }
    }
}

/// `repokit token ...`.
pub(crate) async fn token_command(
    kit: &Repokit,
    json: bool,
    command: TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            scopes,
            name,
            expires_in,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<Scope>, _>>()?;
            let lifetime = expires_in.as_deref().map(parse_duration).transpose()?;
            let (secret, token) = kit.create_token(&name, scopes, lifetime).await?;
            print(
                json,
                &serde_json::json!({"secret": secret, "token": token}),
                |_| secret.clone(),
            )
        }
        TokenCommand::List => {
            let tokens = kit.tokens().await?;
            print(json, &tokens, |ts| {
                lines(ts, |t| {
                    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                    let expires = t.expires.map_or("-".to_string(), |e| e.to_string());
                    format!(
                        "{}\t{}\t{}\tcreated {}\texpires {expires}",
                        t.id,
                        t.name,
                        scopes.join(","),
                        t.created
                    )
                })
            })
        }
        TokenCommand::Revoke { id } => {
            let token = kit.revoke_token(&id).await?;
            print(json, &serde_json::json!({"revoked": token}), |_| {
                format!("revoked {} ({})", token.id, token.name)
            })
        }
    }
}

/// `repokit add`.
pub(crate) async fn cmd_add(
    kit: &Repokit,
    json: bool,
    name: String,
    files: Vec<PathBuf>,
    take: bool,
    publish: bool,
) -> anyhow::Result<()> {
    let name = RepoName::new(name)?;
    let uploads = expand(&files)?
        .iter()
        .map(|f| {
            Upload::from_path(f)
                .map(|u| Upload { take, ..u })
                .with_context(|| f.display().to_string())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress: Arc<dyn Progress> = if !json && on_terminal && uploads.len() > 1 {
        Arc::new(Bar(indicatif::ProgressBar::new(0)))
    } else {
        Arc::new(NoProgress)
    };
    let report = kit.add(&name, &uploads, progress).await?;
    if !json {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    let added = |r: &AddReport| {
        format!(
            "{}: {} added, {} unchanged, revision {}",
            r.repo,
            r.added.len(),
            r.unchanged.len(),
            r.revision.as_deref().unwrap_or("-")
        )
    };
    if !publish {
        return print(json, &report, added);
    }
    // The publish finds the revision, and the chunks an add of 64
    // packages or more rendered ahead, in memory.
    let published = kit.publish(&name).await?;
    #[derive(Serialize)]
    struct AddPublished<'a> {
        add: &'a AddReport,
        publish: &'a PublishReport,
    }
    let both = AddPublished {
        add: &report,
        publish: &published,
    };
    print(json, &both, |_| {
        format!("{}\n{}", added(&report), published_line(&published))
    })
}

/// `repokit promote`.
pub(crate) async fn cmd_promote(
    kit: &Repokit,
    json: bool,
    to: String,
    req: Promote,
    publish: bool,
    sync: Vec<String>,
) -> anyhow::Result<()> {
    repo_sync::merge::check(publish, !sync.is_empty())?;
    let targets = repo_sync::Target::open_all(&sync)?;
    let report = repo_sync::promote_publish_sync(
        kit,
        &RepoName::new(to)?,
        req,
        publish,
        &targets,
        &repo_sync::Retention::default(),
    )
    .await?;
    print(json, &report, |m| {
        let r = &m.promote;
        let mut line = format!(
            "{} -> {}: {} promoted, {} unchanged, revision {}",
            r.from,
            r.repo,
            r.promoted.len(),
            r.unchanged.len(),
            r.revision.as_deref().unwrap_or("-")
        );
        if let Some(p) = &m.publish {
            line.push('\n');
            line.push_str(&published_line(p));
        }
        if let Some(s) = &m.sync {
            for t in &s.targets {
                line.push_str(&format!("\n{}: at {}", t.target, t.publication));
            }
        }
        line
    })
}

/// `repokit sync`.
pub(crate) async fn cmd_sync(
    kit: &Repokit,
    json: bool,
    name: String,
    targets: Vec<String>,
    keep: usize,
    keep_days: u64,
    grace: String,
) -> anyhow::Result<()> {
    let targets = repo_sync::Target::open_all(&targets)?;
    let retention = repo_sync::Retention {
        keep: keep.max(1),
        keep_days,
        grace: std::time::Duration::from_secs(parse_duration(&grace)?),
    };
    let report = repo_sync::sync(kit, &RepoName::new(name)?, &targets, &retention).await?;
    print(json, &report, |r| {
        r.targets
            .iter()
            .map(|t| {
                format!(
                    "{}: {} {} (+{} -{} packages, {} files / {} bytes sent)",
                    t.target,
                    if t.switched {
                        "switched to"
                    } else {
                        "already at"
                    },
                    t.publication,
                    t.packages_added.len(),
                    t.packages_removed.len(),
                    t.files_uploaded,
                    t.bytes_uploaded
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `repokit gc`.
pub(crate) async fn cmd_gc(
    kit: &Repokit,
    json: bool,
    dry_run: bool,
    min_age: String,
    max_delete: usize,
) -> anyhow::Result<()> {
    let opts = repo_core::gc::GcOptions {
        dry_run,
        min_age: std::time::Duration::from_secs(parse_duration(&min_age)?),
        max_delete,
    };
    let report = kit.gc(&opts).await?;
    print(json, &report, |r| {
        let (n, b) = r
            .deleted
            .values()
            .fold((0, 0), |(n, b), c| (n + c.objects, b + c.bytes));
        format!(
            "{} {n} objects ({b} bytes) of {} examined{}",
            if r.dry_run { "would delete" } else { "deleted" },
            r.examined,
            if r.capped {
                "; stopped at --max-delete"
            } else {
                ""
            }
        )
    })
}

/// `repokit check`: the report (problems one per line), then an error when
/// a problem is left unrepaired.
pub(crate) async fn cmd_check(
    kit: &Repokit,
    json: bool,
    read_data: bool,
    repair: bool,
) -> anyhow::Result<()> {
    let report = kit
        .check(&repo_core::repos::CheckOptions { read_data, repair })
        .await?;
    print(json, &report, |r| {
        let mut out: Vec<String> = r
            .problems
            .iter()
            .map(|p| {
                let fixed = if p.repaired { " (repaired)" } else { "" };
                format!("{}\t{}\t{}{fixed}", p.kind, p.object, p.detail)
            })
            .collect();
        out.push(format!(
            "{} repositories, {} objects, {} bytes read, {} problems",
            r.repositories,
            r.objects,
            r.verified_bytes,
            r.problems.len()
        ));
        out.join("\n")
    })?;
    if !report.is_clean() {
        let left = report.problems.iter().filter(|p| !p.repaired).count();
        return Err(repo_core::Error::Corrupt {
            key: "store".into(),
            reason: format!("check found {left} problems"),
        }
        .into());
    }
    Ok(())
}
