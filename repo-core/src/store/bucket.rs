//! `s3://BUCKET[/PREFIX][?endpoint=&region=]` URLs: parsed, and opened
//! through object_store with credentials from the `AWS_*` environment
//! only, for the store (`Store::s3`) and for mirror targets.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::error::{Error, Result};

/// A bucket location: `s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]`.
///
/// Credentials, and the endpoint and region when the URL does not give
/// them, come from the usual environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL`,
/// `AWS_REGION`, ...): never from the URL, which ends up in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    /// Object names are under this prefix (no leading or trailing `/`).
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl BucketUrl {
    pub fn parse(url: &str) -> Result<BucketUrl> {
        let bad = |why: &str| Error::InvalidInput(format!("bucket url {url:?}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("expected s3://BUCKET[/PREFIX]"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(bad("invalid bucket name"));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            crate::names::RepoPath::new(&prefix).map_err(|_| bad("invalid prefix"))?;
        }
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) if v.starts_with("http://") || v.starts_with("https://") => {
                    endpoint = Some(v.to_string())
                }
                Some(("region", v)) if !v.is_empty() => region = Some(v.to_string()),
                _ => {
                    return Err(bad(&format!(
                        "unknown parameter {pair:?} (endpoint, region)"
                    )));
                }
            }
        }
        Ok(BucketUrl {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region,
        })
    }

    /// The object store of the bucket, with names relative to the prefix.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        use object_store::aws::AmazonS3Builder;
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&self.bucket);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        // A plain-HTTP endpoint (a local S3 server) is what the caller
        // asked for by naming it.
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            b = b.with_allow_http(true);
        }
        let s3 = b.build()?;
        if self.prefix.is_empty() {
            Ok(Arc::new(s3))
        } else {
            Ok(Arc::new(object_store::prefix::PrefixStore::new(
                s3,
                self.prefix.as_str(),
            )))
        }
    }
}

impl std::fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}
