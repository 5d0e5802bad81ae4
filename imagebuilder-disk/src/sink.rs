//! Output sinks: a local file, and a wrapper that hashes what goes through it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use super::zero::ZEROS;
use super::OutputSink;

/// An [`OutputSink`] over a local file: positioned writes, so ranges never written stay holes.
///
/// [`finish`](OutputSink::finish) sets the file's length and flushes it to disk.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    path: PathBuf,
}

impl FileSink {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::new(file, path))
    }

    /// A sink over an open file; `path` only names it in errors.
    pub fn new(file: File, path: &Path) -> Self {
        Self {
            file,
            path: path.to_owned(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl OutputSink for FileSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn finish(self: Box<Self>, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()
    }
}

/// Where a [`HashingSink`] leaves the output's sha256 once it finishes.
#[derive(Debug, Clone, Default)]
pub struct Sha256Handle(Arc<OnceLock<String>>);

impl Sha256Handle {
    /// The lowercase hex sha256 of the whole output, once the sink finished successfully.
    pub fn get(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// Wraps a sink and computes the sha256 of the whole output as it is written.
///
/// The writer must write in increasing offset order ([`DiskWriter::sequential`]); ranges it
/// skips are hashed as the zeros they read as, without being written. The digest goes to the
/// [`Sha256Handle`] that [`HashingSink::new`] returns with the sink, since the writer consumes
/// the sink itself.
///
/// ```
/// use imagebuilder_disk::{HashingSink, OutputSink};
///
/// struct Discard;
/// impl OutputSink for Discard {
///     fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> { Ok(()) }
///     fn finish(self: Box<Self>, _: u64) -> std::io::Result<()> { Ok(()) }
/// }
///
/// let (mut sink, sha256) = HashingSink::new(Discard);
/// sink.write_at(1, b"a")?;
/// Box::new(sink).finish(3)?;
/// // The output is the three bytes "\0a\0"; the digest is hex.
/// assert_eq!(sha256.get().unwrap().len(), 64);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`DiskWriter::sequential`]: super::DiskWriter::sequential
#[derive(Debug)]
pub struct HashingSink<S> {
    inner: S,
    hasher: Sha256,
    next: u64,
    digest: Sha256Handle,
}

impl<S: OutputSink> HashingSink<S> {
    /// Wraps `inner`; the handle gets the digest when the sink finishes.
    pub fn new(inner: S) -> (Self, Sha256Handle) {
        let digest = Sha256Handle::default();
        let sink = Self {
            inner,
            hasher: Sha256::new(),
            next: 0,
            digest: digest.clone(),
        };
        (sink, digest)
    }

    /// The wrapped sink.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped sink; writing to it directly bypasses the hash.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped sink, dropping the hash.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn hash_zeros_to(&mut self, offset: u64) {
        hash_zeros(&mut self.hasher, offset - self.next);
        self.next = offset;
    }
}

/// Feeds `len` zero bytes to `hasher` from the shared zero buffer.
pub(crate) fn hash_zeros(hasher: &mut Sha256, mut len: u64) {
    while len > 0 {
        let n = len.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..n]);
        len -= n as u64;
    }
}

impl<S: OutputSink> OutputSink for HashingSink<S> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if offset < self.next {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "a hashing sink needs increasing offsets: a write at {offset} after one ending at {}",
                    self.next
                ),
            ));
        }
        self.inner.write_at(offset, data)?;
        self.hash_zeros_to(offset);
        self.hasher.update(data);
        self.next += data.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>, len: u64) -> std::io::Result<()> {
        if len < self.next {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("finished at {len} bytes after writing up to {}", self.next),
            ));
        }
        self.hash_zeros_to(len);
        let Self {
            inner,
            hasher,
            digest,
            ..
        } = *self;
        Box::new(inner).finish(len)?;
        // Set only here: a handle never shows the digest of an output that failed.
        let _ = digest.0.set(hex::encode(hasher.finalize()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Memory(Vec<u8>);

    impl OutputSink for Memory {
        fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            let end = offset as usize + data.len();
            if self.0.len() < end {
                self.0.resize(end, 0);
            }
            self.0[offset as usize..end].copy_from_slice(data);
            Ok(())
        }

        fn finish(self: Box<Self>, _: u64) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_digest_covers_skipped_ranges_as_zeros() {
        let (mut sink, handle) = HashingSink::new(Memory::default());
        sink.write_at(3, b"abc").unwrap();
        sink.write_at(200_000, b"x").unwrap();
        assert_eq!(handle.get(), None);
        assert_eq!(sink.get_ref().0.len(), 200_001);
        Box::new(sink).finish(300_000).unwrap();
        let mut expected = vec![0u8; 300_000];
        expected[3..6].copy_from_slice(b"abc");
        expected[200_000] = b'x';
        assert_eq!(
            handle.get().unwrap(),
            hex::encode(Sha256::digest(&expected))
        );
    }

    #[test]
    fn going_backwards_is_an_error() {
        let (mut sink, handle) = HashingSink::new(Memory::default());
        sink.write_at(10, b"abc").unwrap();
        assert!(sink.write_at(12, b"d").is_err());
        assert!(Box::new(sink).finish(5).is_err());
        assert_eq!(handle.get(), None);
    }
}
