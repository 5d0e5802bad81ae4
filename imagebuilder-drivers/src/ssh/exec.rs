//! Running one command on an exec channel and streaming its output line by line.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use imagebuilder_core::host::OutputStream;
use ssh2::Channel;

use super::connection::{Connection, Context};
use super::error::SshError;
use super::{IO_TIMEOUT, KEEPALIVE_INTERVAL};

/// A line longer than this is passed on in pieces, so one runaway line cannot exhaust memory.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How long a command may print nothing before the connection is checked (a guest that died
/// silently must not hang a call forever).
const PROBE_AFTER_SILENCE: Duration = Duration::from_secs(30);

/// Longest single wait on the socket; bounds how fast a cancel or deadline is noticed.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// Receives output lines; returns false when nobody listens any more (the caller went away).
pub(crate) type Emit<'a> = &'a mut dyn FnMut(OutputStream, String) -> bool;

/// Quotes `text` for a POSIX shell as one word.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command line that runs `command` as root without prompting.
pub(crate) fn elevate(command: &str) -> String {
    format!("sudo -n sh -c {}", shell_quote(command))
}

/// Runs `command`, streams its output to `emit` as it arrives, and returns its exit code
/// (128 + the signal number when a signal killed it). `deadline` bounds the whole run.
pub(crate) fn run(
    connection: &Connection,
    ctx: &Context,
    command: &str,
    emit: Emit<'_>,
    deadline: Option<Instant>,
) -> Result<i32, SshError> {
    let channel = open_channel(connection)?;
    run_on(connection, ctx, channel, command, emit, deadline)
}

/// Opens a session channel: the first round trip of every command, and the step at which a
/// stale session shows itself before anything has run.
pub(crate) fn open_channel(connection: &Connection) -> Result<Channel, SshError> {
    let session = connection.session();
    session.set_blocking(true);
    session
        .channel_session()
        .map_err(|e| SshError::ssh("open a session channel", e))
}

/// [`run`] on a channel already opened with [`open_channel`].
pub(crate) fn run_on(
    connection: &Connection,
    ctx: &Context,
    mut channel: Channel,
    command: &str,
    emit: Emit<'_>,
    deadline: Option<Instant>,
) -> Result<i32, SshError> {
    channel
        .exec(command)
        .map_err(|e| SshError::ssh("start the command", e))?;
    // Stdin is closed at once, so a command that reads its input ends instead of waiting.
    channel
        .send_eof()
        .map_err(|e| SshError::ssh("close the command's input", e))?;
    let session = connection.session();
    session.set_blocking(false);
    if let Err(error) = pump(connection, ctx, &mut channel, emit, deadline) {
        // Let go without blocking: a blocking close waits for the server's close, which a
        // still-running command (after a cancel) or a dead connection may never send. The
        // session is dropped after such an error and frees what is left of the channel.
        drop(channel);
        session.set_blocking(true);
        return Err(error);
    }
    session.set_blocking(true);
    channel
        .wait_close()
        .map_err(|e| SshError::ssh("wait for the command's channel to close", e))?;
    exit_code(&channel)
}

/// The exit code of a closed channel.
pub(crate) fn exit_code(channel: &Channel) -> Result<i32, SshError> {
    let signal = channel
        .exit_signal()
        .map_err(|e| SshError::ssh("read the command's exit signal", e))?;
    if let Some(name) = signal.exit_signal {
        return Ok(signal_exit_code(&name));
    }
    channel
        .exit_status()
        .map_err(|e| SshError::ssh("read the command's exit status", e))
}

/// Reads stdout and stderr without blocking on either, so each line is passed on as soon as
/// it arrives whichever stream it is on, until the server's end-of-file.
fn pump(
    connection: &Connection,
    ctx: &Context,
    channel: &mut Channel,
    emit: Emit<'_>,
    deadline: Option<Instant>,
) -> Result<(), SshError> {
    let mut stdout = LineSplitter::new(OutputStream::Stdout);
    let mut stderr = LineSplitter::new(OutputStream::Stderr);
    let mut buf = vec![0u8; 32 * 1024];
    let mut last_data = Instant::now();
    let mut next_keepalive = Instant::now() + KEEPALIVE_INTERVAL;
    loop {
        ctx.check_cancelled()?;
        if let Some(deadline) = deadline {
            if Instant::now() >= deadline {
                return Err(SshError::Deadline {
                    what: "finish the command".into(),
                    after: Duration::ZERO,
                    last: None,
                });
            }
        }
        let mut progressed = false;
        for (id, splitter) in [(0, &mut stdout), (1, &mut stderr)] {
            match channel.stream(id).read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    progressed = true;
                    if !splitter.feed(&buf[..n], emit) {
                        return Err(SshError::Cancelled);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(SshError::lost("read the command's output", e)),
            }
        }
        let now = Instant::now();
        if progressed {
            last_data = now;
            continue;
        }
        if channel.eof() {
            break;
        }
        if now >= next_keepalive {
            // Non-blocking: may only queue; the reply is read by later calls.
            let _ = connection.session().keepalive_send();
            next_keepalive = now + KEEPALIVE_INTERVAL;
        }
        if now.duration_since(last_data) >= PROBE_AFTER_SILENCE {
            if !connection.is_alive(IO_TIMEOUT) {
                return Err(SshError::lost(
                    "wait for the command's output",
                    std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "the server stopped answering while the command was silent for {:?}",
                            now.duration_since(last_data)
                        ),
                    ),
                ));
            }
            last_data = Instant::now();
        }
        connection.wait_socket(POLL_SLICE);
    }
    if !(stdout.finish(emit) && stderr.finish(emit)) {
        return Err(SshError::Cancelled);
    }
    Ok(())
}

/// 128 + the Linux number of a signal named as in the SSH protocol ("KILL", "TERM", ...);
/// 255 (what `ssh` exits with) for a name it does not know.
fn signal_exit_code(name: &str) -> i32 {
    const SIGNALS: &[(&str, i32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("XCPU", 24),
        ("XFSZ", 25),
    ];
    let name = name.trim_start_matches("SIG");
    SIGNALS
        .iter()
        .find(|(known, _)| *known == name)
        .map_or(255, |(_, number)| 128 + number)
}

/// Cuts a byte stream into lines: newline-terminated, `\r\n` tolerated, invalid UTF-8
/// replaced, overlong lines split, and a last unterminated line kept until the end.
pub(crate) struct LineSplitter {
    stream: OutputStream,
    pending: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn new(stream: OutputStream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Adds bytes and emits every complete line; false when the receiver is gone.
    pub(crate) fn feed(&mut self, data: &[u8], emit: Emit<'_>) -> bool {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset;
            let mut line = &self.pending[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            while line.len() > MAX_LINE {
                let cut = char_boundary(line, MAX_LINE);
                if !emit_bytes(self.stream, &line[..cut], emit) {
                    return false;
                }
                line = &line[cut..];
            }
            if !emit_bytes(self.stream, line, emit) {
                return false;
            }
            start = end + 1;
        }
        // Strictly longer, so the byte after the cut is there to tell a split character.
        while self.pending.len() - start > MAX_LINE {
            let end = char_boundary(&self.pending[start..], MAX_LINE) + start;
            if !emit_bytes(self.stream, &self.pending[start..end], emit) {
                return false;
            }
            start = end;
        }
        self.pending.drain(..start);
        true
    }

    /// Emits what is left (a last line without a newline); false when the receiver is gone.
    pub(crate) fn finish(&mut self, emit: Emit<'_>) -> bool {
        let rest = std::mem::take(&mut self.pending);
        rest.is_empty() || emit_bytes(self.stream, &rest, emit)
    }
}

fn emit_bytes(stream: OutputStream, line: &[u8], emit: Emit<'_>) -> bool {
    emit(stream, String::from_utf8_lossy(line).into_owned())
}

/// The largest cut at or below `limit` (< `bytes.len()`) that does not split a UTF-8
/// sequence, when the bytes are UTF-8 at all; never zero.
fn char_boundary(bytes: &[u8], limit: usize) -> usize {
    let continues = |at: usize| (bytes[at] & 0b1100_0000) == 0b1000_0000;
    let mut cut = limit;
    while cut > limit.saturating_sub(3) && cut > 1 && continues(cut) {
        cut -= 1;
    }
    if continues(cut) {
        limit
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut emit = |_: OutputStream, line: String| {
            lines.push(line);
            true
        };
        let mut splitter = LineSplitter::new(OutputStream::Stdout);
        for chunk in chunks {
            assert!(splitter.feed(chunk, &mut emit));
        }
        assert!(splitter.finish(&mut emit));
        lines
    }

    #[test]
    fn joins_partial_lines_across_chunks() {
        assert_eq!(
            split(&[b"hel", b"lo\nwor", b"ld\r\n\nlast"]),
            ["hello", "world", "", "last"]
        );
        assert!(split(&[b""]).is_empty());
    }

    #[test]
    fn replaces_invalid_utf8_and_splits_long_lines_on_char_boundaries() {
        assert_eq!(split(&[b"a\xffb\n"]), ["a\u{fffd}b"]);
        let mut long = vec![b'x'; MAX_LINE - 1];
        long.extend_from_slice("é".as_bytes()); // straddles the limit
        long.extend_from_slice(b"tail\n");
        let lines = split(&[&long]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE - 1);
        assert_eq!(lines[1], "étail");
        // Exactly the limit, then more of the same line.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.extend_from_slice(b"z\n");
        let lines = split(&[&exact[..MAX_LINE], &exact[MAX_LINE..]]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], "z");
        // A long line that arrives whole with its newline is split too.
        assert_eq!(split(&[&exact]).len(), 2);
    }

    #[test]
    fn stops_when_the_receiver_is_gone() {
        let mut splitter = LineSplitter::new(OutputStream::Stderr);
        assert!(!splitter.feed(b"a\nb\n", &mut |_, _| false));
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(elevate("echo 'x'"), r"sudo -n sh -c 'echo '\''x'\'''");
        assert_eq!(signal_exit_code("KILL"), 137);
        assert_eq!(signal_exit_code("SIGTERM"), 143);
        assert_eq!(signal_exit_code("WEIRD"), 255);
    }
}
