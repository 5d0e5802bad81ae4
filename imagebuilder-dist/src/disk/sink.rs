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
/// The hashing runs on a thread of its own, fed through a short queue: sha256 costs about as
/// much CPU as reading and writing the bytes, so on two cores the output is written while the
/// previous bytes are hashed, instead of one after the other.
///
/// ```
/// use imagebuilder_dist::disk::{HashingSink, OutputSink};
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
    hasher: Hasher,
    next: u64,
    digest: Sha256Handle,
}

/// Pieces of the output queued for the hashing thread before the writer waits for it.
const HASH_QUEUE: usize = 4;

/// What the hashing thread hashes next.
enum Piece {
    Data(Vec<u8>),
    Zeros(u64),
}

/// The hashing thread: pieces go in, the digest comes out when the queue closes.
#[derive(Debug)]
struct Hasher {
    queue: Option<std::sync::mpsc::SyncSender<Piece>>,
    thread: Option<std::thread::JoinHandle<String>>,
}

impl Hasher {
    fn start() -> Self {
        let (queue, pieces) = std::sync::mpsc::sync_channel::<Piece>(HASH_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for piece in pieces {
                    match piece {
                        Piece::Data(bytes) => hasher.update(&bytes),
                        Piece::Zeros(len) => hash_zeros(&mut hasher, len),
                    }
                }
                hex::encode(hasher.finalize())
            });
        match thread {
            Ok(thread) => Self {
                queue: Some(queue),
                thread: Some(thread),
            },
            // No thread to be had: hash nothing now and report no digest.
            Err(_) => Self {
                queue: None,
                thread: None,
            },
        }
    }

    fn send(&self, piece: Piece) -> std::io::Result<()> {
        let sent = self.queue.as_ref().map(|q| q.send(piece).is_ok());
        match sent {
            Some(true) => Ok(()),
            _ => Err(std::io::Error::other("the sha256 thread stopped")),
        }
    }

    /// Closes the queue and waits for the digest.
    fn finish(mut self) -> std::io::Result<String> {
        drop(self.queue.take());
        self.thread
            .take()
            .ok_or_else(|| std::io::Error::other("could not start a sha256 thread"))?
            .join()
            .map_err(|_| std::io::Error::other("the sha256 thread panicked"))
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        // Closing the queue ends the thread; nobody waits for its digest.
        drop(self.queue.take());
    }
}

impl<S: OutputSink> HashingSink<S> {
    /// Wraps `inner`; the handle gets the digest when the sink finishes.
    pub fn new(inner: S) -> (Self, Sha256Handle) {
        let digest = Sha256Handle::default();
        let sink = Self {
            inner,
            hasher: Hasher::start(),
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

    fn hash_zeros_to(&mut self, offset: u64) -> std::io::Result<()> {
        if offset > self.next {
            self.hasher.send(Piece::Zeros(offset - self.next))?;
        }
        self.next = offset;
        Ok(())
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
        self.hash_zeros_to(offset)?;
        self.hasher.send(Piece::Data(data.to_vec()))?;
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
        self.hash_zeros_to(len)?;
        let Self {
            inner,
            hasher,
            digest,
            ..
        } = *self;
        // The file is flushed while the last pieces are hashed.
        let finished = Box::new(inner).finish(len);
        let sha256 = hasher.finish();
        finished?;
        // Set only here: a handle never shows the digest of an output that failed.
        let _ = digest.0.set(sha256?);
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
    fn the_digest_keeps_the_order_of_many_pieces() {
        // More pieces than the hashing queue holds, with gaps between them.
        let (mut sink, handle) = HashingSink::new(Memory::default());
        let mut expected = Vec::new();
        for i in 0..50u64 {
            let piece = vec![i as u8 + 1; 1000 + i as usize];
            let at = expected.len() as u64 + i * 7;
            expected.resize(at as usize, 0);
            sink.write_at(at, &piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        let len = expected.len() as u64 + (1 << 20);
        expected.resize(len as usize, 0);
        Box::new(sink).finish(len).unwrap();
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
