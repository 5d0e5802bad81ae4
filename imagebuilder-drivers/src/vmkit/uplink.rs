//! The build VM's isolated uplink: the guest reaches the outside network, but nothing on the
//! build host's loopback except the SSH port the build forwards to it on purpose.
//!
//! QEMU's user network (slirp) maps 10.0.2.2 to the host's 127.0.0.1, and a root guest
//! reaches 127.0.0.1 with a raw packet too (storage emulators, local daemons, `imagebuilder
//! serve` would all be reachable). So QEMU runs in a network namespace of its own, where
//! "the host's loopback" is the namespace's empty one, and slirp4netns gives that namespace
//! its way out:
//!
//! ```text
//! guest ── QEMU user net (in a fresh netns) ──tap0── slirp4netns ────────── host network
//!          hostfwd 0.0.0.0:2222 → guest:22           --disable-host-loopback
//! host 127.0.0.1:PORT ── slirp4netns add_hostfwd ──► netns:2222 ──► guest:22
//! ```
//!
//! - QEMU is started as `unshare --net -- qemu-system-x86_64 ...` (unshare execs it: same
//!   pid, QEMU's own command line) with its usual `-netdev user`.
//! - `slirp4netns --disable-host-loopback` attaches to QEMU's pid; the write end of its exit
//!   pipe is held by QEMU only, so it exits when QEMU does, however QEMU ends. SSH is one API
//!   call (`add_hostfwd`) binding `127.0.0.1:PORT` on the host; a taken port is retried there,
//!   without restarting QEMU.
//! - DNS: QEMU's slirp answers the guest at 10.0.2.3 with the resolvers of
//!   `/etc/resolv.conf`, asked from inside the namespace. A loopback resolver there
//!   (systemd-resolved's 127.0.0.53) is unreachable from the namespace, so that is refused
//!   up front with a clear error ([`check_resolver`]).
//!
//! Why not passt (which libvirt could also use, through `<qemu:commandline>`): measured here,
//! passt alone lets a raw packet reach the host's 127.0.0.1, and passt in a namespace (Debian
//! 12's build) stops answering on its port forward for good once connections arrive before the
//! guest has its address, which the SSH client's early probes always do.
//!
//! slirp4netns's command line names the uplink's dir (its API socket is there), which is how a
//! reconcile finds and stops it for a build whose process died ([`stop_leftovers`]); QEMU is
//! found as before, by its overlay.
//!
//! Needs `slirp4netns` and `unshare` (Debian: slirp4netns, util-linux) and root (tested as
//! root only; as another user `unshare --user --map-root-user` is used).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imagebuilder_core::host::HostError;

/// How the build VM reaches networks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestNetwork {
    /// The default: the guest reaches the outside network (package mirrors), but nothing on
    /// the build host itself, neither through the gateway 10.0.2.2 nor any raw packet to the
    /// host's 127.0.0.1; only the SSH port the build forwards. QEMU runs in a network
    /// namespace of its own with slirp4netns as its way out (Debian packages slirp4netns,
    /// util-linux), as root.
    #[default]
    Isolated,
    /// QEMU's plain user network, as before the isolation: the guest can connect to every
    /// service listening on the build host's 127.0.0.1 (through 10.0.2.2). Only for guests
    /// and hosts you trust.
    HostReachable,
}

/// The port QEMU forwards to the guest's 22 inside the namespace. Fixed: each namespace is
/// fresh and has nothing else in it.
const NS_SSH_PORT: u16 = 2222;
/// slirp4netns's network (the namespace's side of the uplink).
const UPLINK_CIDR: &str = "10.41.0.0/24";
/// How long slirp4netns may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The tools the uplink runs, with the Debian package of each.
const TOOLS: [(&str, &str); 2] = [("slirp4netns", "slirp4netns"), ("unshare", "util-linux")];

const OPERATION: &str = "start the build VM's isolated network";

/// Fails naming the first missing tool and its Debian package, or a resolver the namespace
/// cannot reach.
pub(crate) fn check_tools() -> Result<(), HostError> {
    check_tools_in(&std::env::var_os("PATH").unwrap_or_default())?;
    check_resolver(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

/// Fails naming the first of [`TOOLS`] missing from `path` (a `PATH` value).
fn check_tools_in(path: &std::ffi::OsStr) -> Result<(), HostError> {
    for (tool, package) in TOOLS {
        if find_in(path, tool).is_none() {
            return Err(HostError::failed(
                OPERATION,
                format!(
                    "`{tool}` is not installed (Debian package {package}); install it, or \
                     choose the host-reachable network (GuestNetwork::HostReachable) to run \
                     without isolation"
                ),
            ));
        }
    }
    Ok(())
}

/// The guest's DNS is asked from inside the namespace, which has no host loopback: a
/// resolver on 127.0.0.0/8 or ::1 would leave every step without name resolution.
pub(crate) fn check_resolver(resolv_conf: &str) -> Result<(), HostError> {
    let loopback = resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .find(|a| {
            a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
        });
    match loopback {
        Some(address) => Err(HostError::failed(
            OPERATION,
            format!(
                "/etc/resolv.conf names the loopback resolver {address}, which the build VM's \
                 network namespace cannot reach; name a resolver on a real interface there \
                 (e.g. systemd-resolved's upstream from `resolvectl status`), or choose \
                 GuestNetwork::HostReachable"
            ),
        )),
        None => Ok(()),
    }
}

fn find_in(path: &std::ffi::OsStr, tool: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The uplink dir of the VM whose QMP socket is `qmp_socket`: next to it (UNIX socket paths
/// must stay short), named after it.
pub(crate) fn dir_for(qmp_socket: &Path) -> PathBuf {
    qmp_socket.with_extension("net")
}

/// One VM's uplink: [`Uplink::prepare`] before QEMU starts, [`Uplink::wrap`] its command,
/// [`Uplink::qemu_started`] once it has, [`Uplink::attach`] to give it its way out. Dropped,
/// slirp4netns is killed and the dir removed, unless [`Uplink::keep`] was called.
#[derive(Debug)]
pub(crate) struct Uplink {
    dir: PathBuf,
    /// The exit pipe's read end, for slirp4netns.
    exit_read: Option<OwnedFd>,
    /// Its write end, for QEMU only: this process gives its copy up once QEMU runs.
    exit_write: Option<OwnedFd>,
    slirp4netns: Option<Child>,
    ssh_port: u16,
}

impl Uplink {
    /// Makes `dir` (removing what an earlier VM of the same dir left) and the exit pipe.
    pub(crate) fn prepare(dir: &Path) -> Result<Self, HostError> {
        use std::os::unix::fs::DirBuilderExt as _;
        check_tools()?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| HostError::Failed {
                operation: format!("create {}", dir.display()),
                source: Box::new(e),
            })?;
        let (exit_read, exit_write) = pipe().map_err(|e| HostError::failed(OPERATION, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            exit_read: Some(exit_read),
            exit_write: Some(exit_write),
            slirp4netns: None,
            ssh_port: 0,
        })
    }

    /// The program and leading arguments that start `qemu` in a network namespace of its own,
    /// and the descriptor QEMU must inherit (see [`inherit_fds`]).
    pub(crate) fn wrap(&self, qemu: &str) -> (String, Vec<String>, Vec<RawFd>) {
        let mut args: Vec<String> = Vec::new();
        // SAFETY: geteuid takes nothing and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            args.extend(["--user".into(), "--map-root-user".into()]);
        }
        args.extend(["--net".into(), "--".into(), qemu.into()]);
        let fds = self.exit_write.iter().map(|w| w.as_raw_fd()).collect();
        ("unshare".into(), args, fds)
    }

    /// QEMU's `-netdev` value: its own user network, SSH forwarded inside the namespace.
    pub(crate) fn netdev(&self, id: &str) -> String {
        format!("user,id={id},hostfwd=tcp:0.0.0.0:{NS_SSH_PORT}-:22")
    }

    /// Gives up this process's copy of the exit pipe's write end once QEMU holds one, so
    /// slirp4netns exits with QEMU.
    pub(crate) fn qemu_started(&mut self) {
        self.exit_write = None;
    }

    /// Attaches slirp4netns to QEMU (`pid`, started by [`Uplink::wrap`]'s command) and
    /// forwards a free port on the host's 127.0.0.1 to the guest's SSH. Blocking.
    pub(crate) fn attach(&mut self, qemu_pid: u32) -> Result<(), HostError> {
        self.spawn_slirp4netns(qemu_pid)
            .and_then(|()| self.forward_ssh())
            .map_err(|message| HostError::failed(OPERATION, format!("{message}{}", self.log())))
    }

    fn spawn_slirp4netns(&mut self, qemu_pid: u32) -> Result<(), String> {
        wait_for_namespace(qemu_pid)?;
        let exit_r = self.exit_read.take().ok_or("the exit pipe is gone")?;
        let (ready_r, ready_w) = pipe()?;
        let log = File::create(self.dir.join("slirp4netns.log"))
            .map_err(|e| format!("create slirp4netns's log: {e}"))?;
        let mut command = Command::new("slirp4netns");
        command
            .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
            .arg(format!("--cidr={UPLINK_CIDR}"))
            .args(["--enable-sandbox", "--enable-seccomp"])
            .arg(format!("--api-socket={}", self.api_socket().display()))
            .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
            .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
            .args([qemu_pid.to_string(), "tap0".into()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            // A Ctrl-C at the terminal must not cut the guest's network before the build
            // has shut it down.
            .process_group(0);
        let fds = vec![exit_r.as_raw_fd(), ready_w.as_raw_fd()];
        // SAFETY: the hook only calls fcntl, which is async-signal-safe.
        unsafe { command.pre_exec(inherit_fds(fds)) };
        let child = command
            .spawn()
            .map_err(|e| format!("start slirp4netns: {e}"))?;
        drop((exit_r, ready_w));
        self.slirp4netns = Some(child);
        wait_ready(ready_r)
    }

    /// Forwards a free host port to the namespace's SSH port; another process may take a
    /// free port before slirp4netns binds it, so a few are tried.
    fn forward_ssh(&mut self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = super::free_port().map_err(|e| e.to_string())?;
            match self.api(&format!(
                r#"{{"execute":"add_hostfwd","arguments":{{"proto":"tcp","host_addr":"127.0.0.1","host_port":{port},"guest_port":{NS_SSH_PORT}}}}}"#
            )) {
                Ok(()) => {
                    self.ssh_port = port;
                    return Ok(());
                }
                Err(e) => last = format!("forward port {port}: {e}"),
            }
        }
        Err(last)
    }

    fn api(&self, request: &str) -> Result<(), String> {
        let mut socket = std::os::unix::net::UnixStream::connect(self.api_socket())
            .map_err(|e| format!("connect to slirp4netns's API: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        socket
            .write_all(request.as_bytes())
            .map_err(|e| format!("write to slirp4netns's API: {e}"))?;
        let mut reply = vec![0; 4096];
        let n = socket
            .read(&mut reply)
            .map_err(|e| format!("read slirp4netns's API: {e}"))?;
        let reply = String::from_utf8_lossy(&reply[..n]);
        if reply.contains("\"return\"") {
            Ok(())
        } else {
            Err(format!("slirp4netns answered {}", reply.trim()))
        }
    }

    fn api_socket(&self) -> PathBuf {
        self.dir.join("s4n.sock")
    }

    /// slirp4netns's own words, for an error.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slirp4netns.log"))
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| format!("; slirp4netns: {}", t.trim()))
            .unwrap_or_default()
    }

    /// The host port (on 127.0.0.1) forwarded to the guest's SSH.
    pub(crate) fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// Where its socket and log are (on slirp4netns's command line).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops slirp4netns (it also exits on its own once QEMU has) and removes the dir.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.slirp4netns.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.exit_read = None;
        self.exit_write = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Leaves slirp4netns running with a VM kept for a person; it exits with its QEMU.
    pub(crate) fn keep(mut self) {
        self.slirp4netns = None;
        self.exit_read = None;
        self.exit_write = None;
        std::mem::forget(self);
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array. Close-on-exec: only the process
    // each end is meant for gets it (see `inherit_fds`), never another one started meanwhile.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both are fresh descriptors this function owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A `pre_exec` hook that lets the child inherit `fds` (close-on-exec everywhere else).
/// Only calls fcntl, which is async-signal-safe.
pub(crate) fn inherit_fds(
    fds: Vec<RawFd>,
) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    move || {
        for fd in &fds {
            // SAFETY: fcntl on a descriptor number; no memory is touched.
            if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Waits until `pid` has left this process's network namespace (unshare has run).
fn wait_for_namespace(pid: u32) -> Result<(), String> {
    let ours = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            Ok(theirs) if theirs != ours => return Ok(()),
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(_) => {
                return Err(format!(
                    "unshare made no namespace within {START_TIMEOUT:?}"
                ))
            }
            Err(e) => return Err(format!("QEMU exited before its namespace was up: {e}")),
        }
    }
}

/// Waits for slirp4netns to write its ready byte; end of file means it exited.
fn wait_ready(ready: OwnedFd) -> Result<(), String> {
    let mut poll = libc::pollfd {
        fd: ready.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(START_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut poll, 1, millis) } <= 0 {
        return Err(format!(
            "slirp4netns was not ready within {START_TIMEOUT:?}"
        ));
    }
    let mut byte = [0u8; 1];
    match File::from(ready).read(&mut byte) {
        Ok(1) => Ok(()),
        _ => Err("slirp4netns exited before it was ready".into()),
    }
}

/// Stops every helper whose command line names `dir` (a crashed build's uplink) and removes
/// the dir; true when one was stopped. Blocking.
pub(crate) fn stop_leftovers(dir: &Path) -> bool {
    let needle = format!("{}/", dir.display());
    let mut stopped = false;
    for (pid, _) in processes_naming(&needle) {
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill takes no pointers; the pid's command line names this VM's uplink dir,
        // which only its slirp4netns has.
        if unsafe { libc::kill(raw, libc::SIGKILL) } == 0 {
            stopped = true;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                if zombie(pid) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    stopped
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z")
    })
}

/// Processes whose command line holds `needle`, with it.
fn processes_naming(needle: &str) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some((pid, cmdline))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_its_debian_package() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().as_os_str();
        let err = imagebuilder_core::error_chain(&check_tools_in(path).unwrap_err());
        assert!(
            err.contains("`slirp4netns` is not installed (Debian package slirp4netns)"),
            "{err}"
        );
        std::fs::write(dir.path().join("slirp4netns"), b"").unwrap();
        let err = imagebuilder_core::error_chain(&check_tools_in(path).unwrap_err());
        assert!(
            err.contains("`unshare` is not installed (Debian package util-linux)"),
            "{err}"
        );
        std::fs::write(dir.path().join("unshare"), b"").unwrap();
        assert!(check_tools_in(path).is_ok());
    }

    #[test]
    fn a_loopback_resolver_is_refused_a_real_one_is_not() {
        assert!(check_resolver("nameserver 10.255.255.53\n").is_ok());
        assert!(check_resolver("# nameserver 127.0.0.1\nsearch x\n").is_ok());
        let err = check_resolver("search lan\nnameserver 127.0.0.53\n").unwrap_err();
        assert!(
            imagebuilder_core::error_chain(&err).contains("127.0.0.53"),
            "{err}"
        );
        assert!(check_resolver("nameserver ::1").is_err());
    }
}
