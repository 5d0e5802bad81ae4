//! Connecting, host key pinning, reconnects and restarts against a real OpenSSH server.
#![cfg(feature = "ssh")]

mod ssh_support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imagebuilder_core::host::{ExecRequest, Guest, GuestError, OutputStream, RestartOptions};
use imagebuilder_drivers::ssh::{HostKey, SshGuest, SshTarget};
use ssh_support::{describe, free_port, Recorder, Sftp, SshServer, CONNECT_TIMEOUT};

async fn echo(guest: &SshGuest, text: &str) -> Vec<String> {
    let sink = Recorder::default();
    let result = guest
        .exec(&ExecRequest::new(format!("echo {text}")), &sink)
        .await
        .unwrap_or_else(|e| panic!("exec: {}", describe(&e)));
    assert_eq!(result.exit_code, 0);
    sink.texts(OutputStream::Stdout)
}

#[tokio::test]
async fn a_different_host_key_is_refused_at_once_naming_both_fingerprints() {
    let Some(server) = SshServer::start("host_key_mismatch", Sftp::Offered) else {
        return;
    };
    let pinned = server.other_host_key();
    let target = SshTarget {
        host_key: pinned.clone(),
        ..server.target()
    };
    let started = Instant::now();
    let error = SshGuest::connect(target, Duration::from_secs(20))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let text = describe(&error);
    assert!(matches!(error, GuestError::Failed { .. }), "{text}");
    assert!(
        elapsed < Duration::from_secs(2),
        "took {elapsed:?}: it was retried"
    );
    assert!(text.contains(&pinned.fingerprint()), "{text}");
    assert!(text.contains(&server.host_key().fingerprint()), "{text}");
    assert!(text.contains("SHA256:"), "{text}");
    // One connection, and it never authenticated.
    let log = server.log();
    assert_eq!(log.matches("Connection from").count(), 2, "{log}"); // the harness's probe + ours
    assert!(!log.contains("Accepted publickey"), "{log}");
}

#[tokio::test]
async fn connect_gives_up_after_the_timeout_naming_the_last_failure() {
    // Nothing listens on this port.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::write(&key, "not read: the connection fails first").unwrap();
    let target = SshTarget {
        host: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        private_key: key,
        host_key:
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBdBsVP9iUo0vR5K9uhZz0ZCK4Fhg0xuIq7N4QU3xwC"
                .parse()
                .unwrap(),
    };
    let started = Instant::now();
    let error = SshGuest::connect(target, Duration::from_millis(1500))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let text = describe(&error);
    assert!(
        matches!(error, GuestError::Timeout { after, .. } if after == Duration::from_millis(1500)),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_millis(1400),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "overran the timeout: {elapsed:?}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        text.contains("refused"),
        "the last failure is named: {text}"
    );
}

#[tokio::test]
async fn a_server_that_never_speaks_times_out_instead_of_hanging() {
    // Accepts TCP connections but never sends an SSH banner, like a guest that hangs in boot.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::write(&key, "unused").unwrap();
    let target = SshTarget {
        host: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        private_key: key,
        host_key:
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBdBsVP9iUo0vR5K9uhZz0ZCK4Fhg0xuIq7N4QU3xwC"
                .parse()
                .unwrap(),
    };
    let started = Instant::now();
    let error = SshGuest::connect(target, Duration::from_secs(2))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, GuestError::Timeout { .. }),
        "{}",
        describe(&error)
    );
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(
        describe(&error).contains("no SSH banner"),
        "{}",
        describe(&error)
    );
    drop(listener);
}

/// Forwards 127.0.0.1:PORT to `upstream`, except that the first connection is accepted and
/// then left silent (never forwarded, never closed): what QEMU's user-mode network does with
/// a connection made before the guest listens. Returns the port and the connection count.
fn silent_first_proxy(upstream: u16) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut silent = Vec::new();
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                silent.push(client);
                continue;
            }
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn an_accepted_connection_without_a_banner_is_abandoned_for_a_fresh_one() {
    let Some(server) = SshServer::start("silent_first_connection", Sftp::Offered) else {
        return;
    };
    let (port, accepted) = silent_first_proxy(server.port());
    let target = SshTarget {
        port,
        ..server.target()
    };
    // Shorter than the 30 s a silent connection would hold one attempt without a banner wait.
    let guest = SshGuest::connect(target, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("connect: {}", describe(&e)));
    assert_eq!(echo(&guest, "through").await, ["through"]);
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_missing_private_key_fails_at_once_naming_the_file() {
    let Some(server) = SshServer::start("missing_private_key", Sftp::Offered) else {
        return;
    };
    let missing = server.dir().join("no-such-key");
    let target = SshTarget {
        private_key: missing.clone(),
        ..server.target()
    };
    let started = Instant::now();
    let error = SshGuest::connect(target, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(error, GuestError::Failed { .. }),
        "{}",
        describe(&error)
    );
    assert!(describe(&error).contains(&missing.display().to_string()));
}

#[tokio::test]
async fn connect_waits_for_a_server_that_starts_late() {
    let Some(server) = SshServer::prepare("server_starts_late", Sftp::Offered) else {
        return;
    };
    let server = Arc::new(server);
    let starter = {
        let server = server.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            server.start_listening();
        })
    };
    let started = Instant::now();
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    // Backoff starts at 100 ms and is capped at 2 s, so it answers well before the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    starter.join().unwrap();
    assert_eq!(echo(&guest, "up").await, ["up"]);
}

#[tokio::test]
async fn the_next_call_reconnects_after_the_server_restarts() {
    let Some(server) = SshServer::start("reconnect_between_calls", Sftp::Offered) else {
        return;
    };
    let server = Arc::new(server);
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(echo(&guest, "before").await, ["before"]);

    // Restarted between calls: the session the guest holds is dead.
    server.restart();
    assert_eq!(echo(&guest, "after").await, ["after"]);

    // Down when the call starts and back a second later: the call waits for it.
    server.stop();
    let starter = {
        let server = server.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            server.start_listening();
        })
    };
    assert_eq!(echo(&guest, "back").await, ["back"]);
    starter.join().unwrap();

    // An upload on a stale session reconnects too.
    server.restart();
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), "payload").unwrap();
    let remote = server.dir().join("uploaded");
    guest
        .upload(local.path(), remote.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(remote).unwrap(), "payload");
}

#[tokio::test]
async fn a_connection_that_breaks_mid_command_is_reported_as_disconnected() {
    let Some(server) = SshServer::start("break_mid_command", Sftp::Offered) else {
        return;
    };
    let server = Arc::new(server);
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let sink = Arc::new(Recorder::default());
    // Stops the server once the command has printed its first line: mid-command, whatever
    // the machine's load.
    let killer = {
        let (server, sink) = (server.clone(), sink.clone());
        std::thread::spawn(move || {
            let waiting = Instant::now();
            while sink.texts(OutputStream::Stdout).is_empty()
                && waiting.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            server.stop();
        })
    };
    let started = Instant::now();
    let error = guest
        .exec(&ExecRequest::new("echo started; sleep 30"), sink.as_ref())
        .await
        .unwrap_err();
    killer.join().unwrap();
    assert!(
        matches!(error, GuestError::Disconnected { .. }),
        "{}",
        describe(&error)
    );
    assert!(
        describe(&error).contains("sleep 30"),
        "{}",
        describe(&error)
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the break is noticed, not the end of `sleep 30`"
    );
    assert_eq!(sink.texts(OutputStream::Stdout), ["started"]);
}

/// Watches for the marker the restart command writes, then takes the server down like a
/// rebooting guest: sessions killed, port closed for `down_for`, then (if `comes_back`) up
/// again, and `booted` written `settle` later (what the check command waits for).
fn reboot_on_marker(
    server: Arc<SshServer>,
    down_for: Duration,
    comes_back: bool,
    settle: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let marker = server.dir().join("reboot-requested");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "the restart command never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        // `reboot` returns before the system goes down.
        std::thread::sleep(Duration::from_millis(300));
        server.stop();
        if comes_back {
            std::thread::sleep(down_for);
            server.start_listening();
            std::thread::sleep(settle);
            std::fs::write(server.dir().join("booted"), "").unwrap();
        }
    })
}

#[tokio::test]
async fn restart_waits_for_the_guest_to_go_down_come_back_and_pass_the_check() {
    let Some(server) = SshServer::start("restart_comes_back", Sftp::Offered) else {
        return;
    };
    let server = Arc::new(server);
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let rebooter = reboot_on_marker(
        server.clone(),
        Duration::from_millis(700),
        true,
        Duration::from_millis(800),
    );
    let dir = server.dir().display().to_string();
    let started = Instant::now();
    guest
        .restart(&RestartOptions {
            command: format!("touch {dir}/reboot-requested"),
            check_command: format!("test -f {dir}/booted"),
            timeout: Duration::from_secs(30),
        })
        .await
        .unwrap_or_else(|e| panic!("restart: {}\n{}", describe(&e), server.log()));
    rebooter.join().unwrap();
    // It did not return before the guest was back and the check passed.
    assert!(server.dir().join("booted").exists());
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(echo(&guest, "after-restart").await, ["after-restart"]);
}

#[tokio::test]
async fn restart_of_a_guest_that_never_comes_back_times_out() {
    let Some(server) = SshServer::start("restart_never_back", Sftp::Offered) else {
        return;
    };
    let server = Arc::new(server);
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let rebooter = reboot_on_marker(server.clone(), Duration::ZERO, false, Duration::ZERO);
    let dir = server.dir().display().to_string();
    let started = Instant::now();
    let error = guest
        .restart(&RestartOptions {
            command: format!("touch {dir}/reboot-requested"),
            check_command: String::new(),
            timeout: Duration::from_secs(3),
        })
        .await
        .unwrap_err();
    rebooter.join().unwrap();
    let text = describe(&error);
    assert!(
        matches!(error, GuestError::Timeout { after, .. } if after == Duration::from_secs(3)),
        "{text}"
    );
    assert!(text.contains("come back"), "{text}");
    assert!(
        text.contains("refused"),
        "the last failure is named: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_restart_command_that_fails_is_an_error_with_its_output() {
    let Some(server) = SshServer::start("restart_command_fails", Sftp::Offered) else {
        return;
    };
    let guest = SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let error = guest
        .restart(&RestartOptions {
            command: "echo 'reboot: not permitted' >&2; exit 1".into(),
            check_command: String::new(),
            timeout: Duration::from_secs(10),
        })
        .await
        .unwrap_err();
    let text = describe(&error);
    assert!(matches!(error, GuestError::Failed { .. }), "{text}");
    assert!(text.contains("exited with code 1"), "{text}");
    assert!(text.contains("reboot: not permitted"), "{text}");
    // Nothing restarted: the session still works.
    assert_eq!(echo(&guest, "still-here").await, ["still-here"]);
}

#[tokio::test]
async fn host_key_parsing_matches_ssh_keygen_fingerprints() {
    let Some(server) = SshServer::start("fingerprints", Sftp::Offered) else {
        return;
    };
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(server.dir().join("host_ed25519.pub"))
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains(&server.host_key().fingerprint()),
        "{printed} vs {}",
        server.host_key().fingerprint()
    );
    let line = std::fs::read_to_string(server.dir().join("host_ed25519.pub")).unwrap();
    assert_eq!(HostKey::parse(&line).unwrap(), *server.host_key());
}
