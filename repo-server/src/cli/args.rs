//! The command line: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "repokit",
    version,
    about = "Signed RPM and APT repositories, published atomically"
)]
pub(crate) struct Cli {
    /// Data directory of the embedded local store.
    #[arg(
        long,
        global = true,
        env = "REPOKIT_DATA",
        default_value = "./repokit-data"
    )]
    pub(crate) data: PathBuf,
    /// Keep the store in an S3-compatible bucket instead:
    /// s3://BUCKET[/PREFIX][?endpoint=URL&region=R], credentials from the
    /// AWS_* environment variables. DATA then holds only the keyring and
    /// staged uploads.
    #[arg(long, global = true, env = "REPOKIT_STORE")]
    pub(crate) store: Option<String>,
    /// Keyring directory (default: DATA/keys).
    #[arg(long, global = true, env = "REPOKIT_KEYS")]
    pub(crate) keys: Option<PathBuf>,
    /// Largest package file accepted, in bytes.
    #[arg(long, global = true, env = "REPOKIT_MAX_PACKAGE_SIZE")]
    pub(crate) max_package_size: Option<u64>,
    /// Largest RPM signature header plus header accepted, in bytes.
    #[arg(long, global = true, env = "REPOKIT_MAX_RPM_HEADER_SIZE")]
    pub(crate) max_rpm_header_size: Option<u64>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Delete at most this many objects in one run (referrers first,
        /// then the oldest first).
        #[arg(long, default_value_t = 100_000)]
        max_delete: usize,
    },
    /// Check the store: every repository's revisions and publications
    /// readable, every object they name stored, every signed-variant record
    /// naming a stored package. Exits non-zero when a problem is left.
    Check {
        /// Also read every reachable package and metadata file and compare
        /// it with its SHA-256.
        #[arg(long)]
        read_data: bool,
        /// Repair what can be re-derived (drop signed-variant records whose
        /// package is gone); never deletes what a repository reaches.
        #[arg(long)]
        repair: bool,
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
pub(crate) enum TokenCommand {
    /// Create a token and print its secret (shown only once).
    Create {
        /// read, publish:test, publish:stable or admin (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long, default_value = "token")]
        name: String,
        /// Valid for this long (e.g. 90d, 12h); default: until revoked.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens: ids, names, scopes, creation and expiry (never a
    /// secret).
    List,
    /// Revoke a token by id; servers sharing the store refuse it within
    /// 30 seconds. Rotating the admin secret: serve with the new
    /// REPOKIT_ADMIN_TOKEN, then revoke the old admin token.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
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
pub(crate) enum RepoCommand {
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
