//! A real OpenSSH server on 127.0.0.1 for the SSH communicator's tests: generated host and
//! client keys, its own config, port and temp dir; killed with every session it spawned when
//! dropped. `scripts/install-ssh-test-deps.sh` installs what it needs.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::error::Error as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use imagebuilder_core::host::{GuestError, OutputLine, OutputSink, OutputStream};
use imagebuilder_drivers::ssh::{HostKey, SshTarget};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Whether the server binary is there; the only reason an SSH test may skip.
pub fn sshd_missing(test: &str) -> bool {
    if Path::new(SSHD).exists() {
        return false;
    }
    eprintln!("SKIPPED {test}: {SSHD} is not installed (run scripts/install-ssh-test-deps.sh)");
    true
}

/// How the server is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sftp {
    /// `Subsystem sftp internal-sftp`.
    Offered,
    /// No Subsystem line: uploads must fall back to exec.
    Absent,
}

pub struct SshServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Mutex<Option<Child>>,
    host_key: HostKey,
}

impl SshServer {
    /// Starts a server, or returns `None` (having printed why) when sshd is not installed.
    pub fn start(test: &str, sftp: Sftp) -> Option<Self> {
        let server = Self::prepare(test, sftp)?;
        server.start_listening();
        Some(server)
    }

    /// Writes keys and config but does not start sshd yet.
    pub fn prepare(test: &str, sftp: Sftp) -> Option<Self> {
        if sshd_missing(test) {
            return None;
        }
        // sshd refuses to start without its privilege-separation directory.
        fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("ssh-test-")
            .tempdir()
            .expect("temp dir");
        keygen(&dir.path().join("host_ed25519"), "test-host");
        keygen(&dir.path().join("client_ed25519"), "test-client");
        fs::copy(
            dir.path().join("client_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let host_key = HostKey::read_file(dir.path().join("host_ed25519.pub")).expect("host key");
        let server = Self {
            port: free_port(),
            dir,
            child: Mutex::new(None),
            host_key,
        };
        server.write_config(sftp);
        Some(server)
    }

    fn write_config(&self, sftp: Sftp) {
        let d = self.dir.path().display();
        let mut config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             StrictModes no\n\
             PidFile {d}/sshd.pid\n\
             LogLevel VERBOSE\n",
            port = self.port,
        );
        if sftp == Sftp::Offered {
            config.push_str("Subsystem sftp internal-sftp\n");
        }
        fs::write(self.dir.path().join("sshd_config"), config).expect("sshd_config");
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host_key(&self) -> &HostKey {
        &self.host_key
    }

    /// What a guest connection needs: the current user, the client key, the pinned host key.
    pub fn target(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            user: current_user(),
            private_key: self.dir.path().join("client_ed25519"),
            host_key: self.host_key.clone(),
        }
    }

    /// Everything sshd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Starts sshd on this server's port and waits until it accepts connections.
    pub fn start_listening(&self) {
        let mut child = self.child.lock().unwrap();
        assert!(child.is_none(), "sshd is already running");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join("sshd.log"))
                .expect("sshd log");
            let mut process = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(self.dir.path().join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            loop {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    *child = Some(process);
                    return;
                }
                if let Some(status) = process.try_wait().expect("sshd status") {
                    // The port may have been taken between choosing and binding it (by
                    // another test); try again a little later.
                    assert!(
                        Instant::now() < deadline,
                        "sshd exited ({status}) and never listened:\n{}",
                        self.log()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd never listened:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills sshd and every session it spawned (with their commands), as a guest that goes
    /// down does; the port is then closed.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        let pid = child.id() as i32;
        // Sessions run in their own process groups, so kill the listener's whole tree by id.
        let mut victims = descendants(pid);
        victims.push(pid);
        for victim in victims {
            // SAFETY: plain kill(2) on processes this test started.
            unsafe {
                libc::kill(victim, libc::SIGKILL);
            }
        }
        let _ = child.wait();
        // Wait until the port is really closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and starts it again on the same port with the same keys.
    pub fn restart(&self) {
        self.stop();
        self.start_listening();
    }

    /// A second, unrelated ed25519 host key (for the mismatch test).
    pub fn other_host_key(&self) -> HostKey {
        let path = self.dir.path().join("other_ed25519");
        keygen(&path, "impostor");
        HostKey::read_file(path.with_extension("pub")).expect("other key")
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process below `root`, found through /proc's parent links.
fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces; fields follow the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|f| f.parse().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

fn keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (install openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// The error and all its sources on one line.
pub fn describe(error: &GuestError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// One output line as a sink saw it, with when.
#[derive(Debug, Clone)]
pub struct SeenLine {
    pub at: Instant,
    pub stream: OutputStream,
    pub text: String,
}

/// A sink that records every line with the time it arrived.
#[derive(Default)]
pub struct Recorder {
    lines: Mutex<Vec<SeenLine>>,
}

impl Recorder {
    pub fn lines(&self) -> Vec<SeenLine> {
        self.lines.lock().unwrap().clone()
    }

    pub fn texts(&self, stream: OutputStream) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.stream == stream)
            .map(|line| line.text)
            .collect()
    }
}

impl OutputSink for Recorder {
    fn line(&self, line: OutputLine<'_>) {
        self.lines.lock().unwrap().push(SeenLine {
            at: Instant::now(),
            stream: line.stream,
            text: line.text.to_owned(),
        });
    }
}

/// Deterministic bytes that are not all alike (so a misplaced chunk shows).
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
