//! A client of repokit's REST API, made of `curl` runs (so requests go
//! through a real HTTP client, as CI jobs would send them).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A request body.
#[derive(Debug)]
pub enum Body<'a> {
    None,
    Json(serde_json::Value),
    /// A file sent as the raw body.
    File(&'a Path),
}

/// The API at `base` (`http://127.0.0.1:PORT`), as one caller.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
        }
    }

    /// The same API as another caller.
    pub fn as_token(&self, token: Option<&str>) -> Self {
        Api::new(&self.base, token)
    }

    /// Sends a request; returns the status and the JSON answer (`null` when
    /// the answer is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
    ) -> Result<(u16, serde_json::Value)> {
        let mut c = Command::new("curl");
        c.args(["-s", "-X", method, "-o", "-", "-w", "\n%{http_code}"]);
        if let Some(t) = &self.token {
            c.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let mut stdin = None;
        match &body {
            Body::None => {}
            Body::Json(v) => {
                c.args([
                    "-H",
                    "Content-Type: application/json",
                    "--data-binary",
                    "@-",
                ]);
                stdin = Some(serde_json::to_vec(v)?);
            }
            Body::File(p) => {
                c.args([
                    "-H",
                    "Content-Type: application/octet-stream",
                    "--data-binary",
                ])
                .arg(format!("@{}", p.display()));
            }
        }
        c.arg(format!("{}{path}", self.base))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped());
        let mut child = c.spawn().context("running curl")?;
        if let Some(data) = stdin {
            child.stdin.take().context("stdin")?.write_all(&data)?;
        }
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (answer, status) = text.rsplit_once('\n').context("curl printed no status")?;
        let status: u16 = status.trim().parse().context("status")?;
        let json = serde_json::from_str(answer).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }

    /// Sends a request that must succeed (2xx); returns the JSON answer.
    pub fn ok(&self, method: &str, path: &str, body: Body<'_>) -> Result<serde_json::Value> {
        let (status, json) = self.call(method, path, body)?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} answered {status}: {json}");
        }
        Ok(json)
    }

    /// Uploads a package file into a repository.
    pub fn upload(&self, repo: &str, file: &Path) -> Result<serde_json::Value> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .context("file name")?;
        self.ok(
            "PUT",
            &format!("/api/v1/repos/{repo}/packages/{name}"),
            Body::File(file),
        )
    }

    /// Publishes a repository and returns the answer.
    pub fn publish(&self, repo: &str) -> Result<serde_json::Value> {
        self.ok("POST", &format!("/api/v1/repos/{repo}/publish"), Body::None)
    }

    /// Creates a token with the given scopes (the caller must be admin);
    /// returns (secret, token id).
    pub fn create_token(&self, name: &str, scopes: &[&str]) -> Result<(String, String)> {
        let v = self.ok(
            "POST",
            "/api/v1/tokens",
            Body::Json(serde_json::json!({"name": name, "scopes": scopes})),
        )?;
        Ok((
            v["secret"].as_str().context("secret")?.to_string(),
            v["token"]["id"].as_str().context("id")?.to_string(),
        ))
    }
}

/// An admin secret for `REPOKIT_ADMIN_TOKEN`.
pub fn admin_secret() -> String {
    format!("rk_{}", "ad".repeat(32))
}

/// One HTTP/1.1 request over a plain TCP connection, without starting a
/// process (for timing the server itself). Returns the status and body.
pub fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    use std::io::Read;
    let addr = base
        .strip_prefix("http://")
        .context("an http:// base URL")?
        .trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let status_line = String::from_utf8_lossy(&answer[..split]);
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .context("status")?
        .parse()?;
    Ok((status, answer[split + 4..].to_vec()))
}
