//! Fetching artifacts into staging: local files, a real HTTP server on loopback, checksum
//! verification, and no partial file left behind on failure.

use std::path::PathBuf;

use imagebuilder_core::artifacts::{fetch, ArtifactError};

fn dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("artifacts_fetch")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CONTENT: &[u8] = b"#!/bin/sh\necho hello\n";
/// sha256 of CONTENT.
fn digest() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(CONTENT))
}

#[tokio::test]
async fn local_files_are_copied_and_verified() {
    let dir = dir("local");
    let source = dir.join("script.sh");
    std::fs::write(&source, CONTENT).unwrap();
    for uri in [
        format!("file://{}", source.display()),
        source.display().to_string(),
    ] {
        let fetched = fetch(&uri, Some(&digest().to_uppercase()), &dir.join("staging"))
            .await
            .unwrap();
        assert_eq!(fetched.sha256, digest());
        assert_eq!(fetched.size, CONTENT.len() as u64);
        assert_eq!(std::fs::read(&fetched.path).unwrap(), CONTENT);
    }
}

#[tokio::test]
async fn a_mismatch_names_both_digests_and_leaves_nothing() {
    let dir = dir("mismatch");
    let source = dir.join("script.sh");
    std::fs::write(&source, CONTENT).unwrap();
    let staging = dir.join("staging");
    let wrong = "ab".repeat(32);
    let err = fetch(
        &format!("file://{}", source.display()),
        Some(&wrong),
        &staging,
    )
    .await
    .unwrap_err();
    match &err {
        ArtifactError::ChecksumMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &digest());
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "no file is left in staging"
    );
}

#[tokio::test]
async fn missing_files_and_unknown_schemes_are_errors_naming_the_uri() {
    let dir = dir("missing");
    let err = fetch("file:///nonexistent/imagebuilder/x.sh", None, &dir)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed to fetch file:///nonexistent/imagebuilder/x.sh"),
        "{err}"
    );
    let err = fetch("ftp://example.test/x.sh", None, &dir)
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::Unsupported { .. }), "{err}");
}

#[cfg(feature = "http")]
#[tokio::test]
async fn http_urls_are_fetched_and_sas_tokens_stay_out_of_messages() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A one-file HTTP server on loopback: 200 for /script.sh, 404 otherwise.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let n = socket.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            let response = if request.starts_with("GET /script.sh") {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    CONTENT.len()
                )
                .into_bytes();
                r.extend_from_slice(CONTENT);
                r
            } else {
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
            };
            socket.write_all(&response).await.unwrap();
        }
    });
    let dir = dir("http");
    let fetched = fetch(
        &format!("http://127.0.0.1:{port}/script.sh"),
        Some(&digest()),
        &dir,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&fetched.path).unwrap(), CONTENT);
    let err = fetch(&format!("http://127.0.0.1:{port}/missing.sh"), None, &dir)
        .await
        .unwrap_err();
    assert!(
        imagebuilder_core::error_chain(&err).contains("failed to fetch http://127.0.0.1"),
        "{err}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn signed_urls_other_than_azure_are_refused_without_leaking_the_signature() {
    let dir = dir("signed");
    // Fetching it unsigned would fail later and obscurely; refuse it up front.
    let err = fetch(
        "https://downloads.example.test/s.sh?X-Signature=SECRET",
        None,
        &dir,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ArtifactError::Unsupported { .. }), "{err}");
    let text = imagebuilder_core::error_chain(&err);
    assert!(!text.contains("SECRET"), "{text}");
    assert!(text.contains("s.sh?<redacted>"), "{text}");
    let err = fetch("ftp://user:SECRET@example.test/x.sh", None, &dir)
        .await
        .unwrap_err();
    assert!(
        !imagebuilder_core::error_chain(&err).contains("SECRET"),
        "{err}"
    );
}

/// A server on loopback that announces `announced` bytes, sends `sent` of them and then
/// either closes the connection or, with `stall`, keeps it open without sending more.
#[cfg(feature = "http")]
async fn short_server(announced: usize, sent: usize, stall: bool) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {announced}\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&vec![b'x'; sent]).await;
                if stall {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                }
            });
        }
    });
    port
}

#[cfg(feature = "http")]
#[tokio::test]
async fn a_truncated_or_cancelled_download_leaves_nothing_in_staging() {
    let dir = dir("short");
    let port = short_server(1 << 20, 1000, false).await;
    let uri = format!("http://127.0.0.1:{port}/disk.raw");
    let err = fetch(&uri, None, &dir).await.unwrap_err();
    assert!(matches!(err, ArtifactError::Fetch { .. }), "{err}");
    assert!(err.to_string().contains(&uri), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "left behind");

    // Dropped mid-download (a cancel, a deadline): the partial file goes with the future.
    let port = short_server(1 << 20, 64 << 10, true).await;
    let uri = format!("http://127.0.0.1:{port}/disk.raw");
    let started = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        fetch(&uri, None, &dir),
    )
    .await;
    assert!(started.is_err(), "the stalled download cannot finish");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "left behind");
}
