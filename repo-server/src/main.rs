//! The `repokit` command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use repo_core::keyring::Keyring;
use repo_core::names::RepoName;
use repo_core::repos::Promote;
use repo_core::store::Store;
use repo_core::time::parse_duration;
use repo_core::{Error, ErrorKind, Repokit};

mod cli;

use cli::args::{Cli, Command};
use cli::commands::{
    cmd_add, cmd_audit, cmd_check, cmd_export, cmd_gc, cmd_history, cmd_promote, cmd_rollback,
    cmd_serve, cmd_sync, key_command, repo_command, token_command,
};
use cli::output::{lines, print, published_line};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn exit_code(e: &anyhow::Error) -> u8 {
    match error_kind(e) {
        Some(ErrorKind::InvalidInput | ErrorKind::InvalidPackage | ErrorKind::LimitExceeded) => 2,
        Some(ErrorKind::NotFound) => 3,
        Some(ErrorKind::Conflict | ErrorKind::Forbidden) => 4,
        _ => 1,
    }
}

/// The kind of a repo-core or repo-sync error; `None` for anything else
/// (a usage error clap did not catch, a local file the CLI itself reads).
fn error_kind(e: &anyhow::Error) -> Option<ErrorKind> {
    if let Some(e) = e.downcast_ref::<Error>() {
        Some(e.kind())
    } else {
        e.downcast_ref::<repo_sync::Error>().map(|e| e.kind())
    }
}

fn error_code(e: &anyhow::Error) -> &'static str {
    error_kind(e).map_or("error", ErrorKind::code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("repokit: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => {
            // Everything the command did is written and awaited; what is
            // left in memory (a parsed 50,000-package revision, decoded
            // chunks) is not worth freeing piece by piece on the way out.
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(0)
        }
        Err(e) => {
            if json {
                let body = serde_json::json!({"error": {"code": error_code(&e), "message": format!("{e:#}")}});
                eprintln!("{body}");
            } else {
                eprintln!("repokit: {e:#}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

fn open(cli: &Cli) -> anyhow::Result<Repokit> {
    let store = match &cli.store {
        Some(url) => {
            let bucket = repo_core::store::BucketUrl::parse(url)?;
            Store::s3(&bucket, &cli.data.join(".tmp"))
                .with_context(|| format!("opening store {bucket}"))?
        }
        None => Store::local(&cli.data)
            .with_context(|| format!("opening data directory {}", cli.data.display()))?,
    };
    let keys = cli.keys.clone().unwrap_or_else(|| cli.data.join("keys"));
    let mut limits = repo_core::limits::Limits::default();
    if let Some(n) = cli.max_package_size {
        limits.max_package_bytes = n;
    }
    if let Some(n) = cli.max_rpm_header_size {
        limits.max_rpm_header_bytes = n;
    }
    Ok(Repokit::new(store, Keyring::new(keys)).with_limits(limits))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let kit = open(&cli)?;
    let json = cli.json;
    match cli.command {
        Command::Key(c) => key_command(&kit, json, c).await,
        Command::Repo(c) => repo_command(&kit, json, c).await,
        Command::Token(c) => token_command(&kit, json, c).await,
        Command::Add {
            name,
            files,
            take,
            publish,
        } => cmd_add(&kit, json, name, files, take, publish).await,
        Command::Remove { name, specs } => {
            let report = kit.remove(&RepoName::new(name)?, &specs).await?;
            print(json, &report, |r| {
                format!("{}: {} removed", r.repo, r.removed.len())
            })
        }
        Command::Publish { name } => {
            let report = kit.publish(&RepoName::new(name)?).await?;
            print(json, &report, published_line)
        }
        Command::Promote {
            from,
            to,
            specs,
            change,
            publish,
            sync,
        } => {
            let req = Promote {
                from: RepoName::new(from)?,
                packages: specs,
                change,
            };
            cmd_promote(&kit, json, to, req, publish, sync).await
        }
        Command::Rollback { name, revision } => cmd_rollback(&kit, json, name, revision).await,
        Command::History { name, limit } => cmd_history(&kit, json, name, limit).await,
        Command::Expire => {
            let gone = kit.expire().await?;
            print(json, &gone, |g| lines(g, |n| format!("expired {n}")))
        }
        Command::Audit { repo, limit } => cmd_audit(&kit, json, repo, limit).await,
        Command::Export { name, dir } => cmd_export(&kit, json, name, dir).await,
        Command::Sync {
            name,
            targets,
            keep,
            keep_days,
            grace,
        } => cmd_sync(&kit, json, name, targets, keep, keep_days, grace).await,
        Command::Check { read_data, repair } => cmd_check(&kit, json, read_data, repair).await,
        Command::Gc {
            dry_run,
            min_age,
            max_delete,
        } => cmd_gc(&kit, json, dry_run, min_age, max_delete).await,
        Command::Serve {
            listen,
            private_reads,
            expire_every,
            admin_token,
            mirrors,
        } => {
            let options = repo_server::Options {
                public_reads: !private_reads,
                expire_every: std::time::Duration::from_secs(parse_duration(&expire_every)?),
                mirrors: repo_server::parse_mirrors(&mirrors)?,
            };
            cmd_serve(kit, &cli.data, listen, admin_token, options).await
        }
    }
}
