//! Static hosting of publications: `/repos/{name}/{path}` (live) and
//! `/snapshots/{name}/{publication}/{path}` (fixed), with Range, ETag (the
//! blob's SHA-256), 304 and cache headers. Every path resolves through a
//! publication manifest; nothing is read from a directory tree.

use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use repo_core::Repokit;
use repo_core::model::FileRef;
use repo_core::names::{RepoName, RepoPath};
use repo_core::repos::ClientKind;
use repo_core::store::StorageKey;

use crate::error::ApiError;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

fn parse_target(name: &str, path: &str) -> Result<(RepoName, Option<RepoPath>), ApiError> {
    let name = RepoName::new(name)?;
    if path.is_empty() {
        return Ok((name, None));
    }
    Ok((name, Some(RepoPath::new(path)?)))
}

fn not_found(what: String) -> ApiError {
    ApiError::Core(repo_core::Error::NotFound {
        kind: "file",
        name: what,
    })
}

/// Splits the percent-decoded request path after `prefix` into `n` leading
/// segments and the rest; only GET and HEAD are hosting requests.
fn split_request(
    req: &HttpRequest,
    prefix: &str,
    n: usize,
) -> Result<(Vec<String>, String), ApiError> {
    let route_not_found = || {
        ApiError::Core(repo_core::Error::NotFound {
            kind: "route",
            name: format!("{} {}", req.method(), req.path()),
        })
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(route_not_found());
    }
    let raw = req
        .path()
        .strip_prefix(prefix)
        .ok_or_else(route_not_found)?;
    let decoded = percent_decode(raw)
        .ok_or_else(|| ApiError::BadRequest(format!("path {raw:?} is not valid UTF-8")))?;
    let mut parts = decoded.splitn(n + 1, '/');
    let mut segments = Vec::with_capacity(n);
    for _ in 0..n {
        match parts.next() {
            Some(s) if !s.is_empty() => segments.push(s.to_string()),
            _ => return Err(route_not_found()),
        }
    }
    let rest = parts.next().ok_or_else(route_not_found)?.to_string();
    Ok((segments, rest))
}

/// `%XX` escapes decoded; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub async fn live(
    req: HttpRequest,
    kit: web::Data<Arc<Repokit>>,
) -> Result<HttpResponse, ApiError> {
    let (mut segs, path) = split_request(&req, "/repos/", 1)?;
    let name = segs.pop().unwrap_or_default();
    let (name, path) = parse_target(&name, &path)?;
    let Some(path) = path else {
        return Err(not_found(format!("{name}/")));
    };
    if let Some(ext) = path
        .as_str()
        .strip_prefix(name.as_str())
        .and_then(|r| r.strip_prefix('.'))
        && (ext == "repo" || ext == "sources")
    {
        return client_config(&req, &kit, &name, ext == "repo").await;
    }
    let file = kit
        .resolve_live(&name, path.as_str())
        .await?
        .ok_or_else(|| not_found(format!("{name}/{path}")))?;
    serve(&req, &kit, &file, live_cache_control(path.as_str())).await
}

/// Checksum-named metadata never changes under its name; the indexes that
/// name it move with every publish, and other live paths (package files,
/// keys) are revalidated.
fn live_cache_control(path: &str) -> &'static str {
    if is_moving_index(path) {
        REVALIDATE
    } else if path.starts_with("repodata/") || path.contains("/by-hash/") {
        IMMUTABLE
    } else {
        REVALIDATE
    }
}

fn is_moving_index(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    matches!(
        file,
        "repomd.xml" | "repomd.xml.asc" | "InRelease" | "Release" | "Release.gpg"
    ) || (path.contains("/binary-") || path.contains("/source/")) && !path.contains("/by-hash/")
}

pub async fn snapshot(
    req: HttpRequest,
    kit: web::Data<Arc<Repokit>>,
) -> Result<HttpResponse, ApiError> {
    let (segs, path) = split_request(&req, "/snapshots/", 2)?;
    let (name, publication) = (&segs[0], segs[1].clone());
    let (name, path) = parse_target(name, &path)?;
    let Some(path) = path else {
        return Err(not_found(format!("{name}/{publication}/")));
    };
    let file = kit
        .resolve_snapshot(&name, &publication, path.as_str())
        .await?
        .ok_or_else(|| not_found(format!("{name}/{publication}/{path}")))?;
    serve(&req, &kit, &file, IMMUTABLE).await
}

/// A ready-to-use client configuration: a dnf `.repo` file or a deb822
/// `.sources` file with the key inline (`Signed-By`), rendered by repo-core
/// for the host the request reached.
async fn client_config(
    req: &HttpRequest,
    kit: &Repokit,
    name: &RepoName,
    dnf: bool,
) -> Result<HttpResponse, ApiError> {
    let base = {
        let conn = req.connection_info();
        format!("{}://{}", conn.scheme(), conn.host())
    };
    let kind = if dnf {
        ClientKind::Dnf
    } else {
        ClientKind::Apt
    };
    let body = kit.client_config(name, &base, kind).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, REVALIDATE))
        .content_type("text/plain; charset=utf-8")
        .body(body))
}

enum RangeSpec {
    Full,
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a single `bytes=` range; several ranges are answered with the
/// whole file, which RFC 9110 allows.
fn parse_range(value: &str, size: u64) -> RangeSpec {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = if a.is_empty() {
        match b.parse::<u64>() {
            Ok(0) | Err(_) => return RangeSpec::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeSpec::Full;
        };
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) => e.min(size.saturating_sub(1)),
                Err(_) => return RangeSpec::Full,
            }
        };
        (start, end)
    };
    if size == 0 || parsed.0 >= size || parsed.0 > parsed.1 {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Part(parsed.0, parsed.1)
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
    })
}

async fn serve(
    req: &HttpRequest,
    kit: &Repokit,
    file: &FileRef,
    cache: &'static str,
) -> Result<HttpResponse, ApiError> {
    let etag = format!("\"{}\"", file.sha256);
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let builder = |status: StatusCode| {
        let mut b = HttpResponse::build(status);
        b.insert_header((header::ETAG, etag.clone()))
            .insert_header((header::CACHE_CONTROL, cache))
            .insert_header((header::ACCEPT_RANGES, "bytes"));
        b
    };
    if let Some(inm) = header_str(header::IF_NONE_MATCH)
        && etag_matches(&inm, &etag)
    {
        return Ok(builder(StatusCode::NOT_MODIFIED).finish());
    }
    let size = file.size;
    let mut range = match header_str(header::RANGE) {
        Some(r) => parse_range(&r, size),
        None => RangeSpec::Full,
    };
    if let Some(if_range) = header_str(header::IF_RANGE)
        && if_range.trim() != etag
    {
        range = RangeSpec::Full;
    }
    let (status, start, len) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeSpec::Unsatisfiable => {
            return Ok(builder(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish());
        }
    };
    let mut b = builder(status);
    b.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    ));
    if status == StatusCode::PARTIAL_CONTENT {
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        ));
    }
    if req.method() == Method::HEAD {
        return Ok(b.body(SizedStream::new(
            len,
            futures::stream::empty::<Result<bytes::Bytes, actix_web::Error>>(),
        )));
    }
    let partial = status == StatusCode::PARTIAL_CONTENT;
    send_body(req, kit, file, b, start, len, partial).await
}

/// Sends bytes `start..start + len` of `file` (all of it unless
/// `partial`): an assembled index from its chunks, a blob of a local store
/// from its file, any other from the store's stream.
async fn send_body(
    req: &HttpRequest,
    kit: &Repokit,
    file: &FileRef,
    mut b: actix_web::HttpResponseBuilder,
    start: u64,
    len: u64,
    partial: bool,
) -> Result<HttpResponse, ApiError> {
    let open = req
        .app_data::<web::Data<OpenFiles>>()
        .map(|d| d.clone().into_inner());
    if let Some(parts) = &file.parts {
        return Ok(b.body(assembled(kit, open, parts, start, len).await?));
    }
    let blob = StorageKey::Blob(file.sha256.clone());
    if let Some(path) = kit.store().direct_file(&blob) {
        if len > LOCAL_INLINE {
            let stream = local_stream(&path, start, len).map_err(io_error)?;
            return Ok(b.body(SizedStream::new(len, stream)));
        }
        let f = open_file(open.as_deref(), &path).map_err(io_error)?;
        // One buffer: headers and body leave in one write.
        return Ok(b.body(local_read(&f, start, len)?));
    }
    let range = partial.then_some(start..start + len);
    let stream = kit
        .store()
        .get_stream(&blob, range)
        .await?
        .map(|r| r.map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string())));
    Ok(b.body(SizedStream::new(len, stream)))
}

/// Bytes `start..start + len` of an assembled file (an index made of cached
/// chunks): small ranges in one buffer, larger ones streamed part by part.
/// Chunk files of a local store are read through the shared open files.
async fn assembled(
    kit: &Repokit,
    open: Option<Arc<OpenFiles>>,
    parts: &[repo_core::model::Part],
    start: u64,
    len: u64,
) -> Result<actix_web::body::BoxBody, ApiError> {
    use actix_web::body::MessageBody;
    let wanted = repo_core::model::parts_in_range(parts, start, len);
    let store = kit.store().clone();
    if len <= LOCAL_INLINE {
        let mut out = bytes::BytesMut::with_capacity(len as usize);
        for p in &wanted {
            out.extend_from_slice(&read_part(&store, open.as_deref(), p).await?);
        }
        return Ok(out.freeze().boxed());
    }
    let stream = futures::stream::iter(wanted).then(move |p| {
        let (store, open) = (store.clone(), open.clone());
        async move {
            read_part(&store, open.as_deref(), &p)
                .await
                .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))
        }
    });
    Ok(SizedStream::new(len, stream).boxed())
}

/// One part of an assembled file.
async fn read_part(
    store: &repo_core::store::Store,
    open: Option<&OpenFiles>,
    p: &repo_core::model::Part,
) -> Result<bytes::Bytes, ApiError> {
    if let Some(path) = store.direct_file(&p.key()) {
        let f = open_file(open, &path).map_err(io_error)?;
        return local_read(&f, p.offset, p.len);
    }
    Ok(store.read_part(p).await?)
}

/// A local object file, from the shared open files when the server has them.
fn open_file(
    open: Option<&OpenFiles>,
    path: &std::path::Path,
) -> std::io::Result<Arc<std::fs::File>> {
    match open {
        Some(open) => open.get(path),
        None => std::fs::File::open(path).map(Arc::new),
    }
}

/// Local blobs up to this size are answered from one read.
const LOCAL_INLINE: u64 = 256 << 10;

/// Bytes read from a local blob per step of a larger response.
const LOCAL_CHUNK: u64 = 1 << 20;

/// How many object files are kept open.
const OPEN_FILES: usize = 1024;

/// Open object files (blobs and chunks) of a local store, shared by
/// requests: objects are immutable, so a file opened once serves every
/// later read of it (with positioned reads), saving an open and a close per
/// download, and per chunk of an assembled index.
#[derive(Default)]
pub struct OpenFiles(
    std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Arc<std::fs::File>>>,
);

impl OpenFiles {
    fn get(&self, path: &std::path::Path) -> std::io::Result<Arc<std::fs::File>> {
        if let Ok(m) = self.0.lock()
            && let Some(f) = m.get(path)
        {
            return Ok(f.clone());
        }
        let f = Arc::new(std::fs::File::open(path)?);
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= OPEN_FILES {
                m.clear();
            }
            m.insert(path.to_path_buf(), f.clone());
        }
        Ok(f)
    }
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::Core(repo_core::Error::Io(e))
}

/// `len` bytes of a local blob from `start`, in one positioned read.
fn local_read(f: &std::fs::File, start: u64, len: u64) -> Result<bytes::Bytes, ApiError> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, start).map_err(io_error)?;
    Ok(bytes::Bytes::from(buf))
}

/// `len` bytes of a local blob from `start`, in steps of up to 1 MiB read
/// inline (page-cache reads of microseconds; a hand-off to a blocking
/// thread per step would cost more than the read). The file is opened for
/// this response alone and read sequentially into one buffer that is
/// reclaimed for the next step once the server has copied the previous
/// one out, so a large download touches fresh memory once.
fn local_stream(
    path: &std::path::Path,
    start: u64,
    len: u64,
) -> std::io::Result<impl futures::Stream<Item = Result<bytes::Bytes, actix_web::Error>> + 'static>
{
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    if start > 0 {
        f.seek(SeekFrom::Start(start))?;
    }
    let buf = bytes::BytesMut::new();
    Ok(futures::stream::unfold(
        (f, len, buf),
        |(mut f, left, mut buf)| async move {
            if left == 0 {
                return None;
            }
            let n = left.min(LOCAL_CHUNK) as usize;
            // Reclaims the space of the previous chunk when it was dropped.
            buf.reserve(n);
            buf.resize(n, 0);
            match f.read_exact(&mut buf[..n]) {
                Ok(()) => {
                    let chunk = buf.split_to(n).freeze();
                    Some((Ok(chunk), (f, left - n as u64, buf)))
                }
                Err(e) => Some((
                    Err(actix_web::error::ErrorInternalServerError(e.to_string())),
                    (f, 0, buf),
                )),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(
            percent_decode("a%2bb_1.0.deb").as_deref(),
            Some("a+b_1.0.deb")
        );
        assert_eq!(percent_decode("plain/x").as_deref(), Some("plain/x"));
        assert_eq!(percent_decode("bad%zz%2").as_deref(), Some("bad%zz%2"));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert!(matches!(
            parse_range("bytes=0-9", 100),
            RangeSpec::Part(0, 9)
        ));
        assert!(matches!(
            parse_range("bytes=90-", 100),
            RangeSpec::Part(90, 99)
        ));
        assert!(matches!(
            parse_range("bytes=-10", 100),
            RangeSpec::Part(90, 99)
        ));
        assert!(matches!(
            parse_range("bytes=50-500", 100),
            RangeSpec::Part(50, 99)
        ));
        assert!(matches!(
            parse_range("bytes=100-", 100),
            RangeSpec::Unsatisfiable
        ));
        assert!(matches!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Full));
        assert!(matches!(parse_range("items=0-1", 100), RangeSpec::Full));
    }
}
