//! Rendered output as the formats hand it to a publish: files whose body
//! is either bytes or a list of pieces (bytes, or ranges of stored chunks).

/// One rendered metadata file.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub path: String,
    pub body: Body,
    /// Further paths that serve the same bytes (APT by-hash names).
    pub also_at: Vec<String>,
    /// The SHA-256 of the file when the renderer computed it already
    /// (always, for an assembled file).
    pub sha256: Option<String>,
}

/// The bytes of a rendered file.
#[derive(Debug, Clone)]
pub enum Body {
    /// Rendered here.
    Bytes(Vec<u8>),
    /// The concatenation of `parts`, `size` bytes in all: an index made of
    /// cached chunks, stored as the list of its parts.
    Assembled { parts: Vec<Piece>, size: u64 },
}

/// One part of an assembled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes rendered here (an index's head or tail).
    Bytes(Vec<u8>),
    /// `len` bytes at `offset` of the stored form of the chunk `key`.
    Chunk { key: String, offset: u64, len: u64 },
}

impl RenderedFile {
    pub fn new(path: impl Into<String>, data: Vec<u8>) -> Self {
        RenderedFile {
            path: path.into(),
            body: Body::Bytes(data),
            also_at: Vec::new(),
            sha256: None,
        }
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::Bytes(d) => d.len() as u64,
            Body::Assembled { size, .. } => *size,
        }
    }
}
