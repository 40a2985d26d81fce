//! The `repokit` command.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use repo_core::access::{self, Scope};
use repo_core::keyring::Keyring;
use repo_core::names::{KeyName, RepoName};
use repo_core::repos::{
    AddReport, CreateRepo, NoProgress, Progress, Promote, PublishReport, Upload,
};
use repo_core::sign::KeyAlgo;
use repo_core::store::Store;
use repo_core::time::{parse_duration, unix};
use repo_core::{Error, ErrorKind, Repokit};
use serde::Serialize;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "repokit",
    version,
    about = "Signed RPM and APT repositories, published atomically"
)]
struct Cli {
    /// Data directory of the embedded local store.
    #[arg(
        long,
        global = true,
        env = "REPOKIT_DATA",
        default_value = "./repokit-data"
    )]
    data: PathBuf,
    /// Keep the store in an S3-compatible bucket instead:
    /// s3://BUCKET[/PREFIX][?endpoint=URL&region=R], credentials from the
    /// AWS_* environment variables. DATA then holds only the keyring and
    /// staged uploads.
    #[arg(long, global = true, env = "REPOKIT_STORE")]
    store: Option<String>,
    /// Keyring directory (default: DATA/keys).
    #[arg(long, global = true, env = "REPOKIT_KEYS")]
    keys: Option<PathBuf>,
    /// Largest package file accepted, in bytes.
    #[arg(long, global = true, env = "REPOKIT_MAX_PACKAGE_SIZE")]
    max_package_size: Option<u64>,
    /// Largest RPM signature header plus header accepted, in bytes.
    #[arg(long, global = true, env = "REPOKIT_MAX_RPM_HEADER_SIZE")]
    max_rpm_header_size: Option<u64>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Upload package files (or every package under a directory) into a
    /// repository, as one new revision.
    Add {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Move the files into the store instead of copying them (they are
        /// gone afterwards); falls back to a copy across filesystems.
        #[arg(long = "move")]
        take: bool,
        /// Publish the new revision in the same run (as `publish NAME`
        /// after the add).
        #[arg(long)]
        publish: bool,
    },
    /// Remove packages (by file name, name, name-version[-release] or identity).
    Remove {
        name: String,
        #[arg(required = true)]
        specs: Vec<String>,
    },
    /// Render, sign and atomically switch the live publication.
    Publish { name: String },
    /// Promote the published packages of FROM (all, or those matching the
    /// specs) into TO by reference, re-signing RPMs for TO's key.
    Promote {
        from: String,
        to: String,
        specs: Vec<String>,
        /// The change the packages belong to (default: FROM).
        #[arg(long)]
        change: Option<String>,
        /// Publish TO after the promotion.
        #[arg(long)]
        publish: bool,
        /// Then push TO's new publication to these mirror targets
        /// (file:///DIR or s3://BUCKET[/PREFIX]; needs --publish), with the
        /// default retention.
        #[arg(long, num_args = 1.., value_name = "TARGET")]
        sync: Vec<String>,
    },
    /// Make an earlier revision the head again (then `publish`).
    Rollback { name: String, revision: String },
    /// A repository's revisions, newest first.
    History {
        name: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Delete test and composite repositories whose TTL ran out.
    Expire,
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit log, newest first.
    Audit {
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Write the live publication into a directory (atomic symlink swap).
    Export { name: String, dir: PathBuf },
    /// Push the live publication to mirror targets (file:///DIR,
    /// s3://BUCKET[/PREFIX]) as one transaction: every target prepared
    /// first, then each switched. Prints the sync manifest.
    Sync {
        name: String,
        #[arg(required = true)]
        targets: Vec<String>,
        /// Snapshots each target keeps: the newest N...
        #[arg(long, default_value_t = 5)]
        keep: usize,
        /// ...and those that went live less than this many days ago.
        #[arg(long, default_value_t = 20)]
        keep_days: u64,
        /// A replaced snapshot is deleted only after this long.
        #[arg(long, default_value = "48h")]
        grace: String,
    },
    /// Delete stored objects that no repository reaches any more.
    Gc {
        /// Report what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Unreachable objects younger than this are kept.
        #[arg(long, default_value = "1h")]
        min_age: String,
        /// Delete at most this many objects in one run (oldest first).
        #[arg(long, default_value_t = 100_000)]
        max_delete: usize,
    },
    /// Serve repositories over HTTP.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Require a token with the `read` scope for API reads (repository
        /// contents over /repos and /snapshots stay public).
        #[arg(long)]
        private_reads: bool,
        /// How often expired test repositories are removed.
        #[arg(long, default_value = "60s")]
        expire_every: String,
        /// Seeds an admin token with this secret at start.
        #[arg(long, env = "REPOKIT_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// A mirror the API may sync to, as NAME=URL (repeatable); API
        /// calls name mirrors, never URLs.
        #[arg(long = "mirror", env = "REPOKIT_MIRRORS", value_delimiter = ',')]
        mirrors: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret (shown only once).
    Create {
        /// read, publish:test, publish:stable or admin (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long, default_value = "token")]
        name: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a signing key.
    Generate {
        name: String,
        #[arg(long, default_value = "repokit repository signing key")]
        uid: String,
        #[arg(long, default_value = "rsa4096")]
        algo: String,
    },
    /// Print the armored public key.
    Export { name: String },
    /// List keys.
    List,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum RepoCommand {
    /// Create a repository.
    Create {
        name: String,
        #[arg(long)]
        format: String,
        #[arg(long)]
        sign_with: Option<String>,
        /// RPM metadata compression: gz or zstd.
        #[arg(long, default_value = "gz")]
        compression: String,
        /// RPM, with --sign-with: replace (default) every signature an
        /// uploaded package carries, or keep a vendor's next to the
        /// repository's (rpm 6 clients then need the vendor's key too).
        #[arg(long, default_value = "replace", value_parser = ["replace", "keep"])]
        vendor_signatures: String,
        /// APT: the distribution name (the upstream codename).
        #[arg(long)]
        codename: Option<String>,
        /// APT: the component (default main).
        #[arg(long)]
        component: Option<String>,
        /// APT: architectures, comma-separated (default amd64; add `all`
        /// for a binary-all index).
        #[arg(long, value_delimiter = ',')]
        arch: Vec<String>,
        /// test (default), stable or composite.
        #[arg(long, default_value = "test")]
        role: String,
        /// Test and composite repositories: lifetime without a change
        /// (e.g. 20d, the default for test repositories).
        #[arg(long)]
        ttl: Option<String>,
        /// Composite repositories: the members, in order, comma-separated.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
    },
    /// List repositories.
    List,
    /// Show one repository.
    Show { name: String },
    /// Delete a repository.
    Delete { name: String },
}

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

fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        let text = human(value);
        if !text.is_empty() {
            println!("{text}");
        }
    }
    Ok(())
}

/// What `publish` says about its publication.
fn published_line(r: &PublishReport) -> String {
    if r.noop {
        format!("{}: unchanged, live publication {}", r.repo, r.publication)
    } else {
        format!(
            "{}: published {} ({} packages)",
            r.repo, r.publication, r.packages
        )
    }
}

/// Files as given, with each directory replaced by the package files under
/// it (sorted, recursively).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut stack = vec![p.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                } else if path
                    .extension()
                    .is_some_and(|e| e == "rpm" || e == "deb" || e == "dsc")
                {
                    found.push(path);
                }
            }
        }
        // Byte order of the whole path: as deterministic as comparing
        // component by component, and far cheaper for 50,000 files.
        found.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        out.extend(found);
    }
    Ok(out)
}

struct Bar(indicatif::ProgressBar);
impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
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
        Command::Rollback { name, revision } => {
            let report = kit.rollback(&RepoName::new(name)?, &revision).await?;
            print(json, &report, |r| {
                format!(
                    "{}: head is now {} (the packages of {})",
                    r.repo, r.revision, r.restored
                )
            })
        }
        Command::History { name, limit } => {
            let revs = kit.revisions(&RepoName::new(name)?, limit).await?;
            print(json, &revs, |rs| {
                rs.iter()
                    .map(|r| format!("{}\t{}\t{} packages", r.seq, r.id, r.packages))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Expire => {
            let gone = kit.expire().await?;
            print(json, &gone, |g| {
                g.iter()
                    .map(|n| format!("expired {n}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Audit { repo, limit } => {
            let repo = repo.map(RepoName::new).transpose()?;
            let log = access::audit_log(kit.store(), repo.as_ref(), limit).await?;
            print(json, &log, |l| {
                l.iter()
                    .map(|r| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            r.id,
                            r.actor.name,
                            r.action,
                            r.repo.as_ref().map(|n| n.as_str()).unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Export { name, dir } => {
            let report = repo_sync::export::export(&kit, &RepoName::new(name)?, &dir).await?;
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
        Command::Sync {
            name,
            targets,
            keep,
            keep_days,
            grace,
        } => cmd_sync(&kit, json, name, targets, keep, keep_days, grace).await,
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
            let listener = std::net::TcpListener::bind(&listen)
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, data = %Path::display(&cli.data), "serving");
            // The resolved address on stdout lets callers use port 0.
            println!("listening on http://{addr}");
            let options = repo_server::Options {
                public_reads: !private_reads,
                expire_every: std::time::Duration::from_secs(parse_duration(&expire_every)?),
                mirrors: repo_server::parse_mirrors(&mirrors)?,
            };
            repo_server::serve(Arc::new(kit), listener, options).await?;
            Ok(())
        }
    }
}

/// `repokit key ...`.
async fn key_command(kit: &Repokit, json: bool, command: KeyCommand) -> anyhow::Result<()> {
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
async fn repo_command(kit: &Repokit, json: bool, command: RepoCommand) -> anyhow::Result<()> {
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
async fn token_command(kit: &Repokit, json: bool, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { scopes, name } => {
            let scopes = scopes
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<Scope>, _>>()?;
            let (secret, token) = kit.create_token(&name, scopes).await?;
            print(
                json,
                &serde_json::json!({"secret": secret, "token": token}),
                |_| secret.clone(),
            )
        }
    }
}

/// `repokit add`.
async fn cmd_add(
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
async fn cmd_promote(
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
async fn cmd_sync(
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
async fn cmd_gc(
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
