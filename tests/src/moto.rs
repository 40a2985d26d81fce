//! A real S3-compatible server for the tests: moto's `moto_server` (from
//! PyPI; `scripts/test` installs it and sets `REPOKIT_MOTO_SERVER`), on a
//! free loopback port, stopped by its PID when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use object_store::ObjectStore;

use crate::run_ok;

#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    child: Child,
}

/// The `moto_server` program: `REPOKIT_MOTO_SERVER`, else from PATH.
fn program() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REPOKIT_MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    if crate::have("moto_server") {
        return Ok(PathBuf::from("moto_server"));
    }
    bail!("moto_server not found: run scripts/test (it installs moto), or set REPOKIT_MOTO_SERVER")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Moto {
    pub fn start() -> Result<Moto> {
        let port = free_port()?;
        let child = Command::new(program()?)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let started = Instant::now();
        loop {
            let up = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("{}/moto-api/", moto.endpoint))
                .output()
                .map(|o| o.stdout == b"200")
                .unwrap_or(false);
            if up {
                return Ok(moto);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("moto_server did not answer on {}", moto.endpoint);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates a bucket that anyone may read over plain HTTP (GET and
    /// HEAD), as a public mirror is.
    pub fn public_bucket(&self, name: &str) -> Result<()> {
        let url = format!("{}/{name}", self.endpoint);
        run_ok(Command::new("curl").args(["-sf", "-X", "PUT", &url]))?;
        run_ok(Command::new("curl").args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read",
            "-H",
            "Content-Length: 0",
            &format!("{url}?acl"),
        ]))?;
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{name}/*"}}]}}"#
        );
        run_ok(Command::new("curl").args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &policy,
            &format!("{url}?policy"),
        ]))?;
        Ok(())
    }

    /// The environment an S3 client needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "repokit-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "repokit-test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// An object store on `bucket` under `prefix`, for in-process use
    /// (stores and mirror targets made by the test itself).
    pub fn object_store(&self, bucket: &str, prefix: &str) -> Result<Arc<dyn ObjectStore>> {
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("repokit-test")
            .with_secret_access_key("repokit-test")
            .with_bucket_name(bucket)
            .build()?;
        Ok(if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        })
    }

    /// The plain-HTTP URL of a prefix of a bucket.
    pub fn http_url(&self, bucket: &str, prefix: &str) -> String {
        format!("{}/{bucket}/{prefix}", self.endpoint)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
