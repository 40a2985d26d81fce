//! Mirror targets: where they are (`TargetUrl`) and the target a URL opens.
//!
//! A target holds one repository; what repokit keeps on it beside the
//! repository's files is `crate::state`.

use std::path::PathBuf;
use std::sync::Arc;

use repo_core::store::BucketUrl;

use crate::bucket::BucketTarget;
use crate::directory::DirTarget;
use crate::mirror::MirrorTarget;
use crate::{Error, Result};

/// Where a target is: `file:///absolute/path` or `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetUrl {
    Dir(PathBuf),
    Bucket(BucketUrl),
}

impl TargetUrl {
    pub fn parse(s: &str) -> Result<TargetUrl> {
        if let Some(path) = s.strip_prefix("file://") {
            let path = PathBuf::from(path);
            let clean = path.is_absolute()
                && path.components().all(|c| {
                    matches!(
                        c,
                        std::path::Component::RootDir | std::path::Component::Normal(_)
                    )
                });
            if !clean {
                return Err(Error::InvalidTarget(format!(
                    "{s:?}: a directory target is file:///ABSOLUTE/PATH without . or .."
                )));
            }
            return Ok(TargetUrl::Dir(path));
        }
        if s.starts_with("s3://") {
            return Ok(TargetUrl::Bucket(BucketUrl::parse(s)?));
        }
        Err(Error::InvalidTarget(format!(
            "{s:?}: expected file:///PATH or s3://BUCKET[/PREFIX]"
        )))
    }
}

impl std::fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetUrl::Dir(p) => write!(f, "file://{}", p.display()),
            TargetUrl::Bucket(b) => b.fmt(f),
        }
    }
}

/// A target ready to be synced to: any `MirrorTarget`.
#[derive(Debug, Clone)]
pub struct Target(Arc<dyn MirrorTarget>);

impl Target {
    pub fn new(target: impl MirrorTarget + 'static) -> Target {
        Target(Arc::new(target))
    }

    /// The target a URL names.
    pub fn open(url: &TargetUrl) -> Result<Target> {
        Ok(match url {
            TargetUrl::Dir(p) => Target::new(DirTarget::new(p.clone())),
            TargetUrl::Bucket(b) => Target::new(BucketTarget::new(b.to_string(), b.open()?)),
        })
    }

    /// The targets a list of URLs names (`file:///DIR`,
    /// `s3://BUCKET[/PREFIX]`), opened; the first bad URL fails it.
    pub fn open_all(urls: &[String]) -> Result<Vec<Target>> {
        urls.iter()
            .map(|u| TargetUrl::parse(u).and_then(|u| Target::open(&u)))
            .collect()
    }

    /// The target as users name it.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    pub(crate) fn mirror(&self) -> &dyn MirrorTarget {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls() {
        assert_eq!(
            TargetUrl::parse("file:///srv/mirror").expect("dir"),
            TargetUrl::Dir("/srv/mirror".into())
        );
        for bad in ["file://relative", "file:///a/../b", "http://x", "/srv"] {
            assert!(TargetUrl::parse(bad).is_err(), "{bad}");
        }
        let b = TargetUrl::parse("s3://mirror-bucket/el9/?endpoint=http://127.0.0.1:9000")
            .expect("bucket");
        assert_eq!(b.to_string(), "s3://mirror-bucket/el9");
    }
}
