//! `SshGuest::upload` over SFTP and over the exec fallback, against real OpenSSH servers.
#![cfg(feature = "ssh")]

mod ssh_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use imagebuilder_core::host::{Guest, GuestError};
use imagebuilder_drivers::ssh::SshGuest;
use ssh_support::{describe, pattern, Sftp, SshServer, CONNECT_TIMEOUT};

/// Names left in `dir` besides the expected ones (a temporary file would show here).
fn leftovers(dir: &std::path::Path, expected: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !expected.contains(&name.as_str()))
        .collect()
}

async fn uploads_whole_files(test: &str, sftp: Sftp) {
    let Some(server) = SshServer::start(test, sftp) else {
        return;
    };
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let remote_dir = server.dir().join("guest");
    fs::create_dir(&remote_dir).unwrap();

    // A small executable script keeps its content and mode.
    let script = local.path().join("setup.sh");
    fs::write(&script, "#!/bin/sh\necho 'hello from the guest'\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let remote = remote_dir.join("setup.sh");
    guest
        .upload(&script, remote.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(fs::read(&remote).unwrap(), fs::read(&script).unwrap());
    assert_eq!(
        fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o755
    );

    // Uploading again replaces the file.
    fs::write(&script, "second version\n").unwrap();
    guest
        .upload(&script, remote.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&remote).unwrap(), "second version\n");

    // 20 MiB, streamed in chunks, arrives byte for byte.
    let big = local.path().join("big.bin");
    let content = pattern(20 * 1024 * 1024);
    fs::write(&big, &content).unwrap();
    let remote_big = remote_dir.join("big.bin");
    let started = Instant::now();
    guest
        .upload(&big, remote_big.to_str().unwrap())
        .await
        .unwrap();
    eprintln!("{test}: 20 MiB uploaded in {:?}", started.elapsed());
    assert!(
        fs::read(&remote_big).unwrap() == content,
        "the 20 MiB file differs"
    );

    // An empty file is a file too.
    let empty = local.path().join("empty");
    fs::write(&empty, "").unwrap();
    guest
        .upload(&empty, remote_dir.join("empty").to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(fs::metadata(remote_dir.join("empty")).unwrap().len(), 0);

    assert!(
        leftovers(&remote_dir, &["setup.sh", "big.bin", "empty"]).is_empty(),
        "temporary files left behind: {:?}",
        leftovers(&remote_dir, &["setup.sh", "big.bin", "empty"])
    );

    // Which path was taken shows in the server's log.
    let log = server.log();
    match sftp {
        Sftp::Offered => assert!(
            !log.contains("subsystem not found")
                && log.contains("Starting session: subsystem 'sftp'"),
            "{log}"
        ),
        Sftp::Absent => assert!(log.contains("subsystem not found"), "{log}"),
    }
}

async fn refuses_a_missing_parent_directory(test: &str, sftp: Sftp) {
    let Some(server) = SshServer::start(test, sftp) else {
        return;
    };
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let local = tempfile::NamedTempFile::new().unwrap();
    fs::write(local.path(), "content").unwrap();

    let missing = server.dir().join("no-such-dir");
    let remote = missing.join("file.txt");
    let error = guest
        .upload(local.path(), remote.to_str().unwrap())
        .await
        .unwrap_err();
    let text = describe(&error);
    assert!(matches!(error, GuestError::Failed { .. }), "{text}");
    assert!(
        text.contains(&format!(
            "parent directory {} does not exist",
            missing.display()
        )),
        "{text}"
    );
    assert!(!missing.exists());

    // A file where the directory should be.
    let file_parent = server.dir().join("a-file");
    fs::write(&file_parent, "").unwrap();
    let error = guest
        .upload(local.path(), file_parent.join("x").to_str().unwrap())
        .await
        .unwrap_err();
    assert!(
        describe(&error).contains("is not a directory"),
        "{}",
        describe(&error)
    );

    // A relative guest path and a missing local file are refused before anything is sent.
    let error = guest
        .upload(local.path(), "relative/file")
        .await
        .unwrap_err();
    assert!(
        describe(&error).contains("not an absolute file path"),
        "{}",
        describe(&error)
    );
    let error = guest
        .upload(
            &server.dir().join("absent-local"),
            server.dir().join("y").to_str().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        describe(&error).contains("absent-local"),
        "{}",
        describe(&error)
    );

    // The guest is still usable afterwards.
    guest
        .upload(local.path(), server.dir().join("ok.txt").to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        fs::read_to_string(server.dir().join("ok.txt")).unwrap(),
        "content"
    );
}

#[tokio::test]
async fn sftp_uploads_whole_files() {
    uploads_whole_files("sftp_uploads_whole_files", Sftp::Offered).await;
}

#[tokio::test]
async fn fallback_uploads_whole_files_without_sftp() {
    uploads_whole_files("fallback_uploads_whole_files", Sftp::Absent).await;
}

#[tokio::test]
async fn sftp_refuses_a_missing_parent_directory() {
    refuses_a_missing_parent_directory("sftp_refuses_a_missing_parent", Sftp::Offered).await;
}

#[tokio::test]
async fn fallback_refuses_a_missing_parent_directory() {
    refuses_a_missing_parent_directory("fallback_refuses_a_missing_parent", Sftp::Absent).await;
}
