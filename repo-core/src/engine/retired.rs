//! An index by path of the files of a repository's retired publications,
//! so that a path the live publication lacks (a 404, or a file of the
//! index a reader fetched just before a switch) costs one lookup instead of
//! a walk over every publication retired within the grace period. It is
//! built once per repository and extended by the publications retired
//! since; each path keeps the newest publication that holds it.

use std::collections::HashMap;

use crate::model::{FileRef, Retired};

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetiredIndex {
    /// The publications indexed, oldest first.
    pubs: Vec<Retired>,
    /// Each path, with the newest indexed publication that holds it (an
    /// index into `pubs`).
    paths: HashMap<String, (FileRef, usize)>,
}

impl RetiredIndex {
    /// The publications of `retired` (a ref's list: oldest first, pruned
    /// from the front) this index lacks, when it can be extended by them;
    /// `None` when it must be built anew.
    pub(crate) fn missing<'a>(&self, retired: &'a [Retired]) -> Option<&'a [Retired]> {
        let Some(last) = self.pubs.last() else {
            return Some(retired).filter(|r| r.is_empty());
        };
        let at = retired
            .iter()
            .position(|r| r.publication == last.publication)?;
        // Everything up to `last` in the ref must be indexed here too.
        let known = &retired[..=at];
        let indexed = &self.pubs[self.pubs.len().saturating_sub(known.len())..];
        (indexed.len() == known.len()
            && indexed
                .iter()
                .zip(known)
                .all(|(a, b)| a.publication == b.publication))
        .then(|| &retired[at + 1..])
    }

    /// Adds one publication's files, retired after every one indexed.
    pub(crate) fn push(
        &mut self,
        retired: Retired,
        files: impl IntoIterator<Item = (String, FileRef)>,
    ) {
        let i = self.pubs.len();
        self.pubs.push(retired);
        for (path, f) in files {
            self.paths.insert(path, (f, i));
        }
    }

    /// The file at `path` from the newest retired publication holding it,
    /// if that one is still in the ref's list and within `grace` seconds of
    /// its retirement at `now` (when the newest holder is not, no older one
    /// is either: they were retired before it).
    pub(crate) fn find(
        &self,
        path: &str,
        current: &[Retired],
        grace: u64,
        now: u64,
    ) -> Option<&FileRef> {
        let (f, i) = self.paths.get(path)?;
        let holder = &self.pubs[*i];
        let listed = current.iter().any(|r| r.publication == holder.publication);
        (listed && holder.retired_at + grace > now).then_some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retired(id: &str, at: u64) -> Retired {
        Retired {
            publication: id.into(),
            retired_at: at,
        }
    }

    fn file(sha: char) -> FileRef {
        FileRef {
            sha256: crate::names::Sha256::new(sha.to_string().repeat(64)).expect("sha"),
            size: 1,
            content_type: "x".into(),
            parts: None,
        }
    }

    #[test]
    fn the_index_extends_and_answers_with_the_newest_holder_in_grace() {
        let mut idx = RetiredIndex::default();
        let list = vec![retired("a", 10), retired("b", 20)];
        assert!(
            idx.missing(&list).is_none(),
            "an empty index extends nothing"
        );
        idx.push(list[0].clone(), [("p".to_string(), file('a'))]);
        idx.push(
            list[1].clone(),
            [("p".to_string(), file('b')), ("q".to_string(), file('b'))],
        );
        assert_eq!(idx.missing(&list).map(<[_]>::len), Some(0));
        let longer = [list.clone(), vec![retired("c", 30)]].concat();
        assert_eq!(idx.missing(&longer).map(<[_]>::len), Some(1));
        // Pruned from the front: still an extension.
        assert_eq!(idx.missing(&longer[1..]).map(<[_]>::len), Some(1));
        // Not a continuation (another history): built anew.
        assert!(idx.missing(&[retired("x", 5)]).is_none());
        assert_eq!(idx.find("p", &list, 100, 50), Some(&file('b')));
        assert_eq!(
            idx.find("p", &list, 100, 120),
            None,
            "past the grace period"
        );
        assert_eq!(idx.find("q", &list[..1], 100, 50), None, "no longer listed");
        assert_eq!(idx.find("z", &list, 100, 50), None);
    }
}
