//! The source cache on real files and real servers: local digests checked once and again
//! after a change, downloads from an HTTP server on loopback (truncated, cancelled, wrong
//! digest, changed upstream), from moto's S3 and from Azurite.

use std::path::{Path, PathBuf};
#[cfg(feature = "http")]
use std::sync::{Arc, Mutex};

use imagebuilder_core::source::{BaseDisk, SourceCache, SourceStageError, Staging};
use imagebuilder_core::template::model::{DiskFormat, HyperVGeneration, OsType, SecurityType};
use sha2::Digest;

fn dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("source_cache")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn disk(location: &str, sha256: Option<&str>) -> BaseDisk {
    BaseDisk {
        location: location.to_owned(),
        format: DiskFormat::Raw,
        virtual_size: 0,
        sha256: sha256.map(str::to_owned),
        os_type: OsType::Linux,
        hyper_v_generation: HyperVGeneration::V1,
        security_type: SecurityType::Standard,
        exact_version: None,
    }
}

/// Deterministic bytes, different per seed.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every file under `dir`, by name relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let name = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                found.push(name);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn a_local_source_is_hashed_once_and_again_when_it_changes() {
    let dir = dir("local");
    let base = dir.join("base.raw");
    let bytes = content(1, 3 << 20);
    std::fs::write(&base, &bytes).unwrap();
    let cache = SourceCache::new(dir.join("cache"));
    let location = format!("file://{}", base.display());
    let wanted = disk(&location, Some(&sha256(&bytes).to_uppercase()));

    let staged = cache.stage(&wanted).await.unwrap();
    assert_eq!(staged.staging, Staging::Hashed);
    assert_eq!(
        staged.disk.location, location,
        "a local source stays where it is"
    );
    assert_eq!(staged.sha256.as_deref(), Some(sha256(&bytes).as_str()));
    assert_eq!(
        cache.stage(&wanted).await.unwrap().staging,
        Staging::Remembered
    );

    // Same size, mtime set back: still noticed, and the mismatch names file and digests.
    let mtime = std::fs::metadata(&base).unwrap().modified().unwrap();
    let changed = content(2, 3 << 20);
    std::fs::write(&base, &changed).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&base)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let err = cache.stage(&wanted).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "sha256 mismatch for {}: expected {}, got {}",
            base.display(),
            sha256(&bytes),
            sha256(&changed)
        )
    );
}

#[tokio::test]
async fn bad_digests_and_missing_files_are_named() {
    let dir = dir("bad");
    let cache = SourceCache::new(dir.join("cache"));
    let err = cache
        .stage(&disk("/images/base.raw", Some("<sha256>")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the source /images/base.raw names sha256 '<sha256>'; expected 64 hex digits"
    );
    let missing = dir.join("missing.raw");
    let err = cache
        .stage(&disk(&missing.display().to_string(), Some(&"0".repeat(64))))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceStageError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    // Without a digest a local file is the host's to open, as before.
    let staged = cache.stage(&disk("/images/base.raw", None)).await.unwrap();
    assert_eq!(staged.staging, Staging::Unchecked);
}

/// What the HTTP server serves, changeable while it runs.
#[cfg(feature = "http")]
#[derive(Default)]
struct Served {
    body: Vec<u8>,
    etag: Option<String>,
    /// Send only this many bytes of the body, then close.
    truncate_at: Option<usize>,
    /// Send this many bytes of the body, then hang.
    stall_at: Option<usize>,
    gets: usize,
}

/// An HTTP/1.1 server on loopback serving `served` at every path (GET and HEAD).
#[cfg(feature = "http")]
async fn http_server(served: Arc<Mutex<Served>>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let served = served.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 8192];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let head_only = request[..n].starts_with(b"HEAD");
                let (head, body, stall) = {
                    let mut s = served.lock().unwrap();
                    if !head_only {
                        s.gets += 1;
                    }
                    let etag = s
                        .etag
                        .as_ref()
                        .map(|e| format!("etag: \"{e}\"\r\n"))
                        .unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{etag}connection: close\r\n\r\n",
                        s.body.len()
                    );
                    let end = s.truncate_at.or(s.stall_at).unwrap_or(s.body.len());
                    let body = if head_only {
                        Vec::new()
                    } else {
                        s.body[..end].to_vec()
                    };
                    (head, body, s.stall_at.is_some())
                };
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                if stall && !head_only {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                }
            });
        }
    });
    port
}

#[cfg(feature = "http")]
#[tokio::test]
async fn http_sources_are_downloaded_once_verified_and_never_left_partial() {
    let dir = dir("http");
    let cache = SourceCache::new(dir.join("cache"));
    let bytes = content(3, 2 << 20);
    let served = Arc::new(Mutex::new(Served {
        body: bytes.clone(),
        etag: Some("v1".into()),
        ..Served::default()
    }));
    let port = http_server(served.clone()).await;
    let url = format!("http://127.0.0.1:{port}/images/base.raw");

    // With a digest: downloaded once into objects/SHA256, then served from the cache.
    let digest = sha256(&bytes);
    let staged = cache.stage(&disk(&url, Some(&digest))).await.unwrap();
    assert_eq!(staged.staging, Staging::Downloaded);
    let object = dir.join("cache/objects").join(&digest);
    assert_eq!(staged.disk.location, object.display().to_string());
    assert_eq!(std::fs::read(&object).unwrap(), bytes);
    let staged = cache.stage(&disk(&url, Some(&digest))).await.unwrap();
    assert_eq!(staged.staging, Staging::Cached);
    assert_eq!(served.lock().unwrap().gets, 1, "downloaded once");

    // A wrong digest names the URL and both digests, and keeps nothing.
    let before = files(&dir.join("cache"));
    let wrong = "ab".repeat(32);
    let err = cache.stage(&disk(&url, Some(&wrong))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("sha256 mismatch for {url}: expected {wrong}, got {digest}")
    );
    assert_eq!(
        files(&dir.join("cache")),
        before,
        "nothing new in the cache"
    );

    // A connection closed early fails naming the URL; nothing under a final (or any) name.
    let other = content(4, 2 << 20);
    {
        let mut s = served.lock().unwrap();
        s.body = other.clone();
        s.etag = None;
        s.truncate_at = Some(100_000);
    }
    let err = cache
        .stage(&disk(&url, Some(&sha256(&other))))
        .await
        .unwrap_err();
    assert!(
        imagebuilder_core::error_chain(&err).contains(&format!("failed to fetch {url}")),
        "{}",
        imagebuilder_core::error_chain(&err)
    );
    assert!(!dir.join("cache/objects").join(sha256(&other)).exists());
    assert_eq!(
        files(&dir.join("cache")),
        before,
        "nothing new in the cache"
    );

    // Cancelled mid-download (a deadline, a cancel): the partial file goes too.
    {
        let mut s = served.lock().unwrap();
        s.truncate_at = None;
        s.stall_at = Some(500_000);
    }
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        cache.stage(&disk(&url, Some(&sha256(&other)))),
    )
    .await;
    assert!(cancelled.is_err(), "the stalled download cannot finish");
    assert_eq!(
        files(&dir.join("cache")),
        before,
        "nothing new in the cache"
    );
}

#[cfg(feature = "http")]
#[tokio::test]
async fn http_sources_without_a_digest_are_reused_while_their_etag_holds() {
    let dir = dir("http-etag");
    let cache = SourceCache::new(dir.join("cache"));
    let v1 = content(5, 1 << 20);
    let served = Arc::new(Mutex::new(Served {
        body: v1.clone(),
        etag: Some("v1".into()),
        ..Served::default()
    }));
    let port = http_server(served.clone()).await;
    let url = format!("http://127.0.0.1:{port}/base.raw");

    let staged = cache.stage(&disk(&url, None)).await.unwrap();
    assert_eq!(staged.staging, Staging::Downloaded);
    assert_eq!(staged.sha256.as_deref(), Some(sha256(&v1).as_str()));
    assert_eq!(std::fs::read(&staged.disk.location).unwrap(), v1);
    assert_eq!(
        cache.stage(&disk(&url, None)).await.unwrap().staging,
        Staging::Cached
    );
    assert_eq!(served.lock().unwrap().gets, 1);

    // Changed upstream (a new ETag): downloaded again.
    let v2 = content(6, 1 << 20);
    {
        let mut s = served.lock().unwrap();
        s.body = v2.clone();
        s.etag = Some("v2".into());
    }
    let staged = cache.stage(&disk(&url, None)).await.unwrap();
    assert_eq!(staged.staging, Staging::Downloaded);
    assert_eq!(std::fs::read(&staged.disk.location).unwrap(), v2);

    // Neither ETag nor Last-Modified: nothing tells versions apart, so never reused.
    served.lock().unwrap().etag = None;
    assert_eq!(
        cache.stage(&disk(&url, None)).await.unwrap().staging,
        Staging::Downloaded
    );
    assert_eq!(
        cache.stage(&disk(&url, None)).await.unwrap().staging,
        Staging::Downloaded
    );
}

/// The location of a storage server from `var` (skips, or fails under CI, without it).
#[allow(dead_code)] // Unused without the s3 and azure features.
fn server(var: &str) -> Option<String> {
    imagebuilder_core::testkit::env::storage_server(var)
}

/// Uploads `bytes` to `uri` with the store's credentials from the environment.
#[allow(dead_code)]
async fn upload(uri: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    let url = url::Url::parse(uri).unwrap();
    let (store, path) = imagebuilder_core::artifacts::open_store(&url).unwrap();
    store.put(&path, bytes.into()).await.unwrap();
}

/// A storage server's sources: by digest (downloaded once, wrong digest refused) and
/// without one (reused while the store's ETag holds).
#[allow(dead_code)]
async fn check_store(location: &str, test: &str) {
    let dir = dir(test);
    let cache = SourceCache::new(dir.join("cache"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let uri = format!(
        "{location}/sources/{test}-{}-{nanos:x}/base.raw",
        std::process::id()
    );
    let bytes = content(7, 3 << 20);
    upload(&uri, bytes.clone()).await;
    let digest = sha256(&bytes);

    let staged = cache.stage(&disk(&uri, Some(&digest))).await.unwrap();
    assert_eq!(staged.staging, Staging::Downloaded);
    assert_eq!(std::fs::read(&staged.disk.location).unwrap(), bytes);
    assert_eq!(
        cache
            .stage(&disk(&uri, Some(&digest)))
            .await
            .unwrap()
            .staging,
        Staging::Cached
    );
    let wrong = "cd".repeat(32);
    let err = cache.stage(&disk(&uri, Some(&wrong))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("sha256 mismatch for {uri}: expected {wrong}, got {digest}")
    );

    assert_eq!(
        cache.stage(&disk(&uri, None)).await.unwrap().staging,
        Staging::Downloaded
    );
    assert_eq!(
        cache.stage(&disk(&uri, None)).await.unwrap().staging,
        Staging::Cached
    );
    let changed = content(8, 3 << 20);
    upload(&uri, changed.clone()).await;
    let staged = cache.stage(&disk(&uri, None)).await.unwrap();
    assert_eq!(staged.staging, Staging::Downloaded);
    assert_eq!(std::fs::read(&staged.disk.location).unwrap(), changed);

    let missing = format!("{location}/sources/{test}-missing-{nanos:x}/base.raw");
    let err = cache.stage(&disk(&missing, None)).await.unwrap_err();
    assert!(
        imagebuilder_core::error_chain(&err).contains(&format!("failed to fetch {missing}")),
        "{}",
        imagebuilder_core::error_chain(&err)
    );
    assert!(
        !files(&dir.join("cache"))
            .iter()
            .any(|f| f.ends_with(".partial")),
        "no partial download is left"
    );
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_sources_are_downloaded_verified_and_cached() {
    let Some(location) = server("IMAGEBUILDER_TEST_S3") else {
        return;
    };
    check_store(&location, "s3").await;
}

#[cfg(feature = "azure")]
#[tokio::test]
async fn azure_sources_are_downloaded_verified_and_cached() {
    let Some(location) = server("IMAGEBUILDER_TEST_AZURITE") else {
        return;
    };
    check_store(&location, "azure").await;
}
