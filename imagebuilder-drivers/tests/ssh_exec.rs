//! `SshGuest::exec` against a real OpenSSH server on 127.0.0.1.
#![cfg(feature = "ssh")]

mod ssh_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imagebuilder_core::host::{ExecRequest, Guest, OutputStream};
use imagebuilder_drivers::ssh::SshGuest;
use ssh_support::{Recorder, Sftp, SshServer, CONNECT_TIMEOUT};

async fn guest_for(server: &SshServer) -> SshGuest {
    SshGuest::connect(server.target(), CONNECT_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("connect: {}\n{}", ssh_support::describe(&e), server.log()))
}

async fn run(guest: &SshGuest, command: &str) -> (i32, Recorder) {
    let sink = Recorder::default();
    let result = guest
        .exec(&ExecRequest::new(command), &sink)
        .await
        .unwrap_or_else(|e| panic!("exec {command:?}: {}", ssh_support::describe(&e)));
    (result.exit_code, sink)
}

#[tokio::test]
async fn exit_codes_and_signals() {
    let Some(server) = SshServer::start("exit_codes_and_signals", Sftp::Offered) else {
        return;
    };
    let guest = guest_for(&server).await;
    assert_eq!(run(&guest, "true").await.0, 0);
    assert_eq!(run(&guest, "exit 3").await.0, 3);
    // A non-zero exit is a result, not an error, and the session stays usable.
    assert_eq!(run(&guest, "false").await.0, 1);
    assert_eq!(run(&guest, "kill -KILL $$").await.0, 128 + 9);
    assert_eq!(run(&guest, "kill -TERM $$").await.0, 128 + 15);
    assert_eq!(run(&guest, "exit 0").await.0, 0);
}

#[tokio::test]
async fn output_is_streamed_as_it_arrives_on_the_right_stream() {
    let Some(server) = SshServer::start("output_is_streamed", Sftp::Offered) else {
        return;
    };
    let guest = guest_for(&server).await;
    let (code, sink) = run(
        &guest,
        "echo first; echo err-one >&2; sleep 1; echo second; echo err-two >&2; exit 7",
    )
    .await;
    let returned = Instant::now();
    assert_eq!(code, 7);
    assert_eq!(sink.texts(OutputStream::Stdout), ["first", "second"]);
    assert_eq!(sink.texts(OutputStream::Stderr), ["err-one", "err-two"]);
    let lines = sink.lines();
    let at = |text: &str| lines.iter().find(|l| l.text == text).unwrap().at;
    // The first lines reached the sink while the command was still sleeping.
    assert!(
        returned.duration_since(at("first")) >= Duration::from_millis(800),
        "the first line arrived only {:?} before the command ended",
        returned.duration_since(at("first"))
    );
    assert!(at("err-one") + Duration::from_millis(800) <= at("second"));
    assert!(at("second") <= at("err-two") + Duration::from_millis(200));
}

#[tokio::test]
async fn partial_lines_invalid_utf8_and_long_lines() {
    let Some(server) = SshServer::start("partial_lines", Sftp::Offered) else {
        return;
    };
    let guest = guest_for(&server).await;
    let (code, sink) = run(
        &guest,
        r"printf 'a\377b\r\n'; printf 'sp'; sleep 0.2; printf 'lit\n'; \
          head -c 200000 /dev/zero | tr '\0' x; echo; printf 'no newline at the end'",
    )
    .await;
    assert_eq!(code, 0);
    let lines = sink.texts(OutputStream::Stdout);
    assert_eq!(lines[0], "a\u{fffd}b");
    assert_eq!(lines[1], "split");
    let long = &lines[2..lines.len() - 1];
    assert!(long.len() >= 2, "a 200000-byte line is passed on in pieces");
    assert!(long
        .iter()
        .all(|piece| piece.len() <= 64 * 1024 && piece.chars().all(|c| c == 'x')));
    assert_eq!(long.iter().map(String::len).sum::<usize>(), 200_000);
    assert_eq!(lines.last().unwrap(), "no newline at the end");
}

#[tokio::test]
async fn stdin_is_closed_so_reading_commands_end() {
    let Some(server) = SshServer::start("stdin_is_closed", Sftp::Offered) else {
        return;
    };
    let guest = guest_for(&server).await;
    let started = Instant::now();
    let (code, sink) = tokio::time::timeout(Duration::from_secs(10), run(&guest, "cat; echo done"))
        .await
        .expect("`cat` waited for input that never comes");
    assert_eq!(code, 0);
    assert_eq!(sink.texts(OutputStream::Stdout), ["done"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn elevated_commands_run_through_sudo_with_quoting_intact() {
    let Some(server) = SshServer::start("elevated", Sftp::Offered) else {
        return;
    };
    let guest = guest_for(&server).await;
    let sink = Recorder::default();
    let command =
        r#"echo "it's $(id -u)"; echo "sudo:${SUDO_USER:-none}"; printf '%s\n' 'a "b" \c'"#;
    let result = guest
        .exec(&ExecRequest::new(command).elevated(), &sink)
        .await
        .unwrap();
    assert_eq!(result.exit_code, 0, "{:?}", sink.lines());
    assert_eq!(
        sink.texts(OutputStream::Stdout),
        [
            "it's 0",
            &format!("sudo:{}", ssh_support::current_user()),
            r#"a "b" \c"#
        ]
    );
    // Not elevated: no sudo in between.
    let (_, plain) = run(&guest, "echo \"sudo:${SUDO_USER:-none}\"").await;
    assert_eq!(plain.texts(OutputStream::Stdout), ["sudo:none"]);
    // sudo's own failure (-n: never prompt) is the command's exit code, not a hang.
    let result = guest
        .exec(&ExecRequest::new("exit 5").elevated(), &Recorder::default())
        .await
        .unwrap();
    assert_eq!(result.exit_code, 5);
}

#[tokio::test]
async fn concurrent_calls_on_one_guest_are_serialized() {
    let Some(server) = SshServer::start("concurrent_calls", Sftp::Offered) else {
        return;
    };
    let guest = Arc::new(guest_for(&server).await);
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let guest = guest.clone();
            tokio::spawn(async move {
                let (code, sink) = run(
                    &guest,
                    &format!("echo start-{i}; sleep 0.2; echo end-{i}; exit {i}"),
                )
                .await;
                (i, code, sink.texts(OutputStream::Stdout))
            })
        })
        .collect();
    for task in tasks {
        let (i, code, lines) = task.await.unwrap();
        assert_eq!(code, i);
        assert_eq!(lines, [format!("start-{i}"), format!("end-{i}")]);
    }
}

/// Every ssh2 call runs off the runtime: on a single-threaded runtime a timer task keeps
/// ticking while a slow command runs and while a connection is being waited for.
#[tokio::test(flavor = "current_thread")]
async fn no_call_blocks_the_async_runtime() {
    let Some(server) = SshServer::prepare("no_call_blocks", Sftp::Offered) else {
        return;
    };
    let server = Arc::new(server);
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Connect while nothing listens yet: the retries must not block the runtime either.
    let starter = {
        let server = server.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            server.start_listening();
        })
    };
    let before = ticks.load(Ordering::Relaxed);
    let guest = guest_for(&server).await;
    starter.join().unwrap();
    let during_connect = ticks.load(Ordering::Relaxed) - before;
    assert!(
        during_connect >= 10,
        "only {during_connect} ticks while connecting for >800 ms"
    );

    let before = ticks.load(Ordering::Relaxed);
    let (code, sink) = run(&guest, "sleep 1.5; echo done").await;
    let during_exec = ticks.load(Ordering::Relaxed) - before;
    assert_eq!(code, 0);
    assert_eq!(sink.texts(OutputStream::Stdout), ["done"]);
    assert!(
        during_exec >= 20,
        "only {during_exec} ticks during a 1.5 s command"
    );
    ticker.abort();
}

#[tokio::test]
async fn dropping_an_exec_future_frees_the_guest_for_the_next_call() {
    let Some(server) = SshServer::start("dropping_an_exec", Sftp::Offered) else {
        return;
    };
    let guest = guest_for(&server).await;
    let sink = Recorder::default();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        guest.exec(&ExecRequest::new("sleep 30"), &sink),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the slow command was cut off by the timeout"
    );
    let started = Instant::now();
    let (code, _) = run(&guest, "exit 4").await;
    assert_eq!(code, 4);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the next call waited {:?} for the abandoned one",
        started.elapsed()
    );
}
