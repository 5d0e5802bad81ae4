//! `imagebuilder build` with checked and remote sources (mock host, real files, an HTTP
//! server on loopback): a wrong digest fails before any VM, a right one is remembered in
//! `STATE/cache/sources`, a URL is downloaded there once.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::Digest;

fn state_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_sources")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `imagebuilder build --host=mock --json TEMPLATE` for a DiskImage source.
fn build(state: &Path, uri: &str, sha256: &str) -> (Output, Vec<Value>) {
    let template = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2024-02-01",
        "name": "sources",
        "location": "local",
        "properties": {
            "source": {"type": "DiskImage", "uri": uri, "format": "raw", "sha256Checksum": sha256},
            "customize": [{"type": "Shell", "name": "hello", "inline": ["echo hello"]}],
            "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
        }
    });
    let path = state.join("template.json");
    std::fs::write(&path, template.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imagebuilder"))
        .args(["build", "--host=mock", "--json"])
        .arg(&path)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("the imagebuilder binary runs");
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (out, events)
}

fn last_log(state: &Path) -> String {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(state.join("builds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    std::fs::read_to_string(runs.last().unwrap().join("customization.log")).unwrap()
}

fn provisioned(events: &[Value]) -> bool {
    events.iter().any(|e| e["event"] == "vmProvisioned")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_local_source_is_verified_before_any_vm_and_remembered() {
    let state = state_dir("local");
    let base = state.join("base.raw");
    let bytes = vec![7u8; 1 << 20];
    std::fs::write(&base, &bytes).unwrap();
    let uri = base.display().to_string();

    let wrong = "ab".repeat(32);
    let (out, events) = build(&state, &uri, &wrong);
    assert_eq!(out.status.code(), Some(1));
    let last = events.last().unwrap();
    assert_eq!(
        (&last["runState"], &last["runSubState"]),
        (&json!("Failed"), &json!("Building"))
    );
    assert_eq!(
        last["message"],
        format!(
            "failed to stage the source: sha256 mismatch for {uri}: expected {wrong}, got {}",
            sha256(&bytes)
        )
    );
    assert!(!provisioned(&events), "no VM before the digest is checked");

    // The file was hashed once, for the failed build: the next one reads only metadata.
    let (out, events) = build(&state, &uri, &sha256(&bytes));
    assert_eq!(out.status.code(), Some(0), "{events:?}");
    assert!(
        last_log(&state).contains("sha256 verified earlier, file unchanged"),
        "{}",
        last_log(&state)
    );
    let changed = vec![8u8; 1 << 20];
    std::fs::write(&base, &changed).unwrap();
    let (out, events) = build(&state, &uri, &sha256(&bytes));
    assert_eq!(out.status.code(), Some(1));
    let message = events.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.ends_with(&format!("got {}", sha256(&changed))),
        "{message}"
    );
    let memos = std::fs::read_dir(state.join("cache/sources/digests"))
        .unwrap()
        .count();
    assert_eq!(memos, 1);
}

/// Serves `body` for every GET and HEAD on loopback, counting GETs; `truncate` sends only
/// part of it. Returns the port.
fn http_server(body: Vec<u8>, truncate: bool, gets: Arc<AtomicUsize>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            let mut request = [0u8; 8192];
            let n = socket.read(&mut request).unwrap_or(0);
            let head_only = request[..n].starts_with(b"HEAD");
            let _ = write!(
                socket,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nlast-modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nconnection: close\r\n\r\n",
                body.len()
            );
            if !head_only {
                gets.fetch_add(1, Ordering::SeqCst);
                let end = if truncate { body.len() / 3 } else { body.len() };
                let _ = socket.write_all(&body[..end]);
            }
        }
    });
    port
}

#[test]
fn an_http_source_is_downloaded_once_into_the_state_dir() {
    let state = state_dir("http");
    let bytes: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let gets = Arc::new(AtomicUsize::new(0));
    let port = http_server(bytes.clone(), false, gets.clone());
    let uri = format!("http://127.0.0.1:{port}/base.raw");

    let wrong = "cd".repeat(32);
    let (out, events) = build(&state, &uri, &wrong);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        events.last().unwrap()["message"],
        format!(
            "failed to stage the source: sha256 mismatch for {uri}: expected {wrong}, got {}",
            sha256(&bytes)
        )
    );
    assert!(!provisioned(&events));

    for _ in 0..2 {
        let (out, events) = build(&state, &uri, "");
        assert_eq!(out.status.code(), Some(0), "{events:?}");
    }
    assert_eq!(
        gets.load(Ordering::SeqCst),
        2,
        "the second build reused the download"
    );
    let object = state.join("cache/sources/objects").join(sha256(&bytes));
    assert_eq!(std::fs::read(&object).unwrap(), bytes);
    assert!(
        last_log(&state).contains("found in the source cache"),
        "{}",
        last_log(&state)
    );
}

#[test]
fn a_truncated_http_source_fails_naming_the_url_and_leaves_no_object() {
    let state = state_dir("truncated");
    let bytes = vec![9u8; 1 << 20];
    let port = http_server(bytes.clone(), true, Arc::default());
    let uri = format!("http://127.0.0.1:{port}/base.raw");
    let (out, events) = build(&state, &uri, &sha256(&bytes));
    assert_eq!(out.status.code(), Some(1));
    let message = events.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(&format!(
            "failed to stage the source: failed to fetch {uri}"
        )),
        "{message}"
    );
    assert!(!provisioned(&events));
    let objects: Vec<_> = std::fs::read_dir(state.join("cache/sources/objects"))
        .unwrap()
        .collect();
    assert!(objects.is_empty(), "{objects:?}");
}
