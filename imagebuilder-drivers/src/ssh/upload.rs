//! Copying a local file into the guest: SFTP when the server has it, else `cat` on an exec
//! channel. Either way the file is written under a temporary name and renamed into place, so
//! a partial upload never appears under the final name.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ssh2::{OpenFlags, OpenType, Sftp};

use super::connection::{Connection, Context};
use super::error::SshError;
use super::exec::{self, shell_quote};

/// Size of each piece read from the local file and sent; the file is never held whole.
const CHUNK: usize = 256 * 1024;

/// Uploads `local` to the absolute guest path `remote`.
pub(crate) fn upload(
    connection: &mut Connection,
    ctx: &Context,
    local: &Path,
    remote: &str,
) -> Result<(), SshError> {
    let parent = parent_dir(remote)?;
    let mut file = File::open(local)
        .map_err(|e| SshError::Invalid(format!("cannot open {}: {e}", local.display())))?;
    let mode = file
        .metadata()
        .map(|meta| meta.permissions().mode() & 0o777)
        .unwrap_or(0o644);
    let temp = format!("{remote}.tmp-{}", unique_suffix());

    if connection.start_sftp()? {
        let connection = &*connection;
        let sftp = connection.sftp().expect("SFTP was started");
        let result = via_sftp(sftp, ctx, &mut file, mode, &parent, &temp, remote);
        match result {
            Ok(Renamed::Yes) => Ok(()),
            // SFTP v3 rename refuses to replace a file; `mv -f` replaces it atomically.
            Ok(Renamed::TargetExists) => {
                let moved = exec_quiet(connection, ctx, &move_command(&temp, remote, None));
                if moved.is_err() {
                    let _ = sftp.unlink(Path::new(&temp));
                }
                moved
            }
            Err(error) => {
                if !error.is_transport() {
                    let _ = sftp.unlink(Path::new(&temp));
                }
                Err(error)
            }
        }
    } else {
        via_exec(connection, ctx, &mut file, mode, &parent, &temp, remote)
    }
}

enum Renamed {
    Yes,
    TargetExists,
}

fn via_sftp(
    sftp: &Sftp,
    ctx: &Context,
    file: &mut File,
    mode: u32,
    parent: &str,
    temp: &str,
    remote: &str,
) -> Result<Renamed, SshError> {
    match sftp.stat(Path::new(parent)) {
        Ok(stat) if stat.is_dir() => {}
        Ok(_) => return Err(not_a_directory(parent)),
        Err(e) if is_missing(&e) => return Err(missing_parent(parent)),
        Err(e) => return Err(SshError::ssh(format!("look up {parent}"), e)),
    }
    let mut out = sftp
        .open_mode(
            Path::new(temp),
            OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
            mode as i32,
            OpenType::File,
        )
        .map_err(|e| SshError::ssh(format!("create {temp}"), e))?;
    copy(ctx, file, &mut out, temp)?;
    drop(out);
    match sftp.rename(Path::new(temp), Path::new(remote), None) {
        Ok(()) => Ok(Renamed::Yes),
        Err(error) => match sftp.stat(Path::new(remote)) {
            Ok(_) => Ok(Renamed::TargetExists),
            Err(_) => Err(SshError::ssh(format!("rename {temp} to {remote}"), error)),
        },
    }
}

fn via_exec(
    connection: &Connection,
    ctx: &Context,
    file: &mut File,
    mode: u32,
    parent: &str,
    temp: &str,
    remote: &str,
) -> Result<(), SshError> {
    let check = format!("test -d {}", shell_quote(parent));
    let code = exec::run(connection, ctx, &check, &mut |_, _| true, None)?;
    if code != 0 {
        // `test -e` tells "missing" from "not a directory" for the message.
        let exists = format!("test -e {}", shell_quote(parent));
        let code = exec::run(connection, ctx, &exists, &mut |_, _| true, None)?;
        return Err(if code == 0 {
            not_a_directory(parent)
        } else {
            missing_parent(parent)
        });
    }

    let command = format!(
        "cat > {t} && {mv}; rc=$?; [ $rc -eq 0 ] || rm -f {t}; exit $rc",
        t = shell_quote(temp),
        mv = move_command(temp, remote, Some(mode)),
    );
    let mut channel = exec::open_channel(connection)?;
    channel
        .exec(&command)
        .map_err(|e| SshError::ssh("start `cat` for the upload", e))?;
    copy(ctx, file, &mut channel, temp)?;
    channel
        .send_eof()
        .map_err(|e| SshError::ssh("finish sending the file", e))?;
    let mut stderr = String::new();
    let mut sink = Vec::new();
    channel
        .read_to_end(&mut sink)
        .map_err(|e| SshError::lost("read the upload's output", e))?;
    let mut bytes = Vec::new();
    channel
        .stderr()
        .read_to_end(&mut bytes)
        .map_err(|e| SshError::lost("read the upload's errors", e))?;
    stderr.push_str(String::from_utf8_lossy(&bytes).trim());
    channel
        .wait_close()
        .map_err(|e| SshError::ssh("wait for the upload's channel to close", e))?;
    match exec::exit_code(&channel)? {
        0 => Ok(()),
        code => Err(SshError::Refused(format!(
            "writing {remote} with `cat` exited with code {code}: {stderr}"
        ))),
    }
}

/// Streams the file in chunks, checking between chunks whether the caller went away.
fn copy(ctx: &Context, from: &mut File, to: &mut dyn Write, temp: &str) -> Result<(), SshError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        ctx.check_cancelled()?;
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(SshError::io("read the local file", e)),
        };
        to.write_all(&buf[..n])
            .map_err(|e| SshError::lost(format!("write {temp}"), e))?;
    }
}

/// Runs a command whose output does not matter; a non-zero exit is an error.
fn exec_quiet(connection: &Connection, ctx: &Context, command: &str) -> Result<(), SshError> {
    let mut stderr = Vec::new();
    let code = exec::run(
        connection,
        ctx,
        command,
        &mut |_, line| {
            stderr.push(line);
            true
        },
        None,
    )?;
    if code == 0 {
        Ok(())
    } else {
        Err(SshError::Refused(format!(
            "`{command}` exited with code {code}: {}",
            stderr.join("\n")
        )))
    }
}

fn move_command(temp: &str, remote: &str, mode: Option<u32>) -> String {
    let mv = format!("mv -f {} {}", shell_quote(temp), shell_quote(remote));
    match mode {
        Some(mode) => format!("chmod {mode:o} {} && {mv}", shell_quote(temp)),
        None => mv,
    }
}

/// The directory that must already exist for `remote`.
fn parent_dir(remote: &str) -> Result<String, SshError> {
    let path = PathBuf::from(remote);
    if !path.is_absolute() || remote.ends_with('/') {
        return Err(SshError::Invalid(format!(
            "the guest path {remote:?} is not an absolute file path"
        )));
    }
    Ok(path
        .parent()
        .map_or_else(|| "/".to_owned(), |p| p.display().to_string()))
}

fn missing_parent(parent: &str) -> SshError {
    SshError::Refused(format!(
        "the parent directory {parent} does not exist in the guest"
    ))
}

fn not_a_directory(parent: &str) -> SshError {
    SshError::Refused(format!("{parent} in the guest is not a directory"))
}

fn is_missing(error: &ssh2::Error) -> bool {
    matches!(
        error.code(),
        ssh2::ErrorCode::SFTP(
            libssh2_sys::LIBSSH2_FX_NO_SUCH_FILE | libssh2_sys::LIBSSH2_FX_NO_SUCH_PATH
        )
    )
}

/// A name suffix that two uploads (from this or another process) will not share.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
