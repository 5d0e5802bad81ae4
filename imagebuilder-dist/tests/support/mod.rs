//! Shared set-up of the store tests: the servers `scripts/storage-servers.sh` starts, a
//! runtime, sparse test outputs and reading results back.
#![allow(dead_code)] // Each test file uses a different part.

use std::ops::Range;

use futures::StreamExt;
use imagebuilder_dist::disk::OutputSink;
use imagebuilder_dist::store::open_store;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

/// The location of a storage server from `var` (skips, or fails under CI, without it).
pub(crate) fn server(var: &str) -> Option<String> {
    imagebuilder_core::testkit::env::storage_server(var)
}

/// A runtime for the sinks' requests; the test thread blocks on it, as a writer's blocking
/// thread does.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A name no other run or test uses.
pub(crate) fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos:x}", std::process::id())
}

/// Deterministic non-zero bytes for a data stretch.
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

/// A sparse output: data stretches (at increasing offsets) in zeros, `len` bytes long.
pub(crate) struct Sparse {
    pub(crate) len: u64,
    pub(crate) data: Vec<(u64, Vec<u8>)>,
}

impl Sparse {
    /// Writes the stretches in order (2 MiB writes at most, as disk writers do) and
    /// finishes.
    pub(crate) fn write_to(&self, mut sink: Box<dyn OutputSink>) -> std::io::Result<()> {
        for (offset, bytes) in &self.data {
            for (i, piece) in bytes.chunks(2 << 20).enumerate() {
                sink.write_at(offset + (i as u64) * (2 << 20), piece)?;
            }
        }
        sink.finish(self.len)
    }

    /// The sha256 of the whole output, zeros included.
    pub(crate) fn sha256(&self) -> String {
        let mut hasher = Sha256::new();
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0u64;
        let fill = |hasher: &mut Sha256, to: u64, at: &mut u64| {
            while *at < to {
                let n = (to - *at).min(zeros.len() as u64) as usize;
                hasher.update(&zeros[..n]);
                *at += n as u64;
            }
        };
        for (offset, bytes) in &self.data {
            fill(&mut hasher, *offset, &mut at);
            hasher.update(bytes);
            at += bytes.len() as u64;
        }
        fill(&mut hasher, self.len, &mut at);
        hex::encode(hasher.finalize())
    }

    /// The byte ranges that hold non-zero 512-byte pages.
    pub(crate) fn nonzero_pages(&self) -> Vec<Range<u64>> {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (offset, bytes) in &self.data {
            assert_eq!(offset % 512, 0);
            for (i, page) in bytes.chunks(512).enumerate() {
                if page.iter().all(|&b| b == 0) {
                    continue;
                }
                let start = offset + i as u64 * 512;
                match ranges.last_mut() {
                    Some(last) if last.end == start => last.end = start + 512,
                    _ => ranges.push(start..start + 512),
                }
            }
        }
        ranges
    }
}

/// The sha256 and size of the object at `url`, read back through `object_store`.
pub(crate) async fn read_sha256(url: &str) -> (String, u64) {
    let (store, path) = open_store(url).unwrap();
    let mut stream = store.get(&path).await.unwrap().into_stream();
    let mut hasher = Sha256::new();
    let mut size = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (hex::encode(hasher.finalize()), size)
}

/// Whether the object at `url` exists.
pub(crate) async fn exists(url: &str) -> bool {
    let (store, path) = open_store(url).unwrap();
    match store.head(&path).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {url}: {e}"),
    }
}

/// The URLs of the objects whose URL starts with `prefix_url` (a directory-like prefix).
pub(crate) async fn list(prefix_url: &str) -> Vec<String> {
    let (store, prefix) = open_store(prefix_url).unwrap();
    let base = prefix_url.trim_end_matches(prefix.as_ref());
    let mut found = Vec::new();
    let mut stream = store.list(Some(&prefix));
    while let Some(meta) = stream.next().await {
        found.push(format!("{base}{}", meta.unwrap().location));
    }
    found.sort();
    found
}

/// A sparse output of 100 MiB and a bit: data at the start, zero gaps of several parts,
/// data chunks that are zeros, and a 512-byte footer at the end (as a fixed VHD has).
pub(crate) fn sparse_100_mib() -> Sparse {
    let mib = 1u64 << 20;
    let len = 100 * mib + 512;
    Sparse {
        len,
        data: vec![
            (0, pattern(1, 3 * mib as usize)),
            (3 * mib, vec![0; 2 * mib as usize]),
            (40 * mib, pattern(2, 5 * mib as usize + 512)),
            (80 * mib, pattern(3, 1024)),
            (len - 512, pattern(4, 512)),
        ],
    }
}
