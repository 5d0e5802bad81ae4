//! Crash recovery. QEMU runs in its own process group, so it outlives a build process that
//! is killed (SIGKILL, OOM, power cut of the terminal), keeping its overlay, seed, QMP socket
//! and port. Each VM therefore has a lease file in the host's lease dir, locked (`flock`)
//! for as long as this process owns the VM, recording what the VM owns: the QEMU pid and its
//! start time, the overlay as QEMU's command line names it, the work dir, the socket and
//! the isolated uplink's dir (its slirp4netns is found by it).
//! The lock goes with the process, so a lease nobody holds is a crashed build's, and
//! [`reconcile`] removes what it records; a pid now used by another process fails the start
//! time and command line checks and is never killed.
//!
//! A VM kept on purpose (`errorHandling: abort`) gives up its lease, so no reconcile touches
//! it. A lease left by a VM dropped without `destroy` (a canceled provision, a panic) is
//! stale too; the next reconcile finds its QEMU gone and removes the files still there.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imagebuilder_core::host::HostError;
use serde_json::{json, Value};

use crate::vmkit::lease_file;

/// The files a VM of this host makes in its work dir (see `provision`, `launch` and the
/// seed); removed by a reconcile, then the dir if it is empty. Never more: the dir is the
/// caller's.
const VM_FILES: [&str; 10] = [
    "disk.qcow2",
    "seed.img",
    "client_key",
    "client_key.pub",
    "host_key.pub",
    "user-data",
    "meta-data",
    "known_hosts",
    "OVMF_VARS.fd",
    "qemu.stderr",
];

/// What one VM owns, as its lease file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) vm_id: String,
    pub(crate) work_dir: PathBuf,
    pub(crate) qmp_socket: PathBuf,
    /// A string only this VM's QEMU has on its command line (its overlay's `-drive` value).
    pub(crate) marker: String,
    /// QEMU's pid and start time (clock ticks after boot), once it runs.
    pub(crate) qemu: Option<(u32, u64)>,
    /// The isolated uplink's dir, which every helper's command line names (none with the
    /// host-reachable network).
    pub(crate) uplink: Option<PathBuf>,
}

impl Record {
    fn to_json(&self) -> Value {
        json!({
            "vm_id": self.vm_id,
            "owner_pid": std::process::id(),
            "work_dir": self.work_dir,
            "qmp_socket": self.qmp_socket,
            "marker": self.marker,
            "qemu_pid": self.qemu.map(|(pid, _)| pid),
            "qemu_start_time": self.qemu.map(|(_, start)| start),
            "uplink_dir": self.uplink,
        })
    }

    fn from_json(value: &Value) -> Option<Self> {
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        let qemu = match (
            value["qemu_pid"].as_u64(),
            value["qemu_start_time"].as_u64(),
        ) {
            (Some(pid), Some(start)) => Some((u32::try_from(pid).ok()?, start)),
            _ => None,
        };
        Some(Self {
            vm_id: text("vm_id")?,
            work_dir: text("work_dir")?.into(),
            qmp_socket: text("qmp_socket")?.into(),
            marker: text("marker")?,
            qemu,
            uplink: text("uplink_dir").map(PathBuf::from),
        })
    }
}

/// The lease of a VM this process owns: the open, locked file. Dropped, it becomes stale
/// (the next reconcile cleans up after the VM); [`Lease::release`] removes it once the VM's
/// resources are gone or handed to a person.
#[derive(Debug)]
pub(crate) struct Lease {
    path: PathBuf,
    file: File,
    record: Record,
}

/// The lease file of `vm_id`: named after it, with anything but letters, digits, `-`, `_`
/// and an inner `.` replaced, so an id never names a path outside `dir`.
fn lease_path(dir: &Path, vm_id: &str) -> PathBuf {
    let name: String = vm_id
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            '.' if i > 0 => c,
            _ => '_',
        })
        .collect();
    dir.join(format!("{name}.lease"))
}

impl Lease {
    /// Takes the lease of `record.vm_id` in `dir` and writes `record` into it.
    pub(crate) fn acquire(dir: &Path, record: Record) -> Result<Self, HostError> {
        let path = lease_path(dir, &record.vm_id);
        // QEMU must not inherit the lock, or the lease would look held for as long as an
        // orphaned QEMU runs; `lease_file::lock` opens it close-on-exec.
        let file = lease_file::lock(&path, &record.vm_id)?;
        let mut lease = Self { path, file, record };
        lease.write()?;
        Ok(lease)
    }

    /// Records QEMU's pid (and its start time, so a reused pid is told apart).
    pub(crate) fn set_qemu(&mut self, pid: u32) -> Result<(), HostError> {
        let start = start_time(pid).ok_or_else(|| {
            HostError::failed(
                "record the QEMU process",
                format!("process {pid} is already gone"),
            )
        })?;
        self.record.qemu = Some((pid, start));
        self.write()
    }

    fn write(&mut self) -> Result<(), HostError> {
        let io = |e: std::io::Error| HostError::Failed {
            operation: format!("write the VM's lease {}", self.path.display()),
            source: Box::new(e),
        };
        let text = format!("{}\n", self.record.to_json());
        self.file.set_len(0).map_err(io)?;
        self.file.write_all_at(text.as_bytes(), 0).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Removes the lease file; the lock goes with the handle.
    pub(crate) fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What [`crate::qemu::QemuBuildHost::reconcile`] found, by VM id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileOutput {
    /// VMs of builds whose process ended without cleaning up: their QEMU was stopped (if it
    /// still ran) and their files removed.
    pub removed: Vec<String>,
    /// VMs a live process owns; left alone.
    pub in_use: Vec<String>,
}

/// Cleans up after every VM in `dir` whose lease nobody holds. Blocking (it waits for the
/// QEMU processes it stops to exit).
pub(crate) fn reconcile(dir: &Path) -> Result<ReconcileOutput, HostError> {
    let mut output = ReconcileOutput::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(output),
        Err(e) => {
            return Err(HostError::Failed {
                operation: format!("list the VM leases in {}", dir.display()),
                source: Box::new(e),
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lease"))
        .collect();
    paths.sort();
    for path in paths {
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                output.in_use.push(id);
                continue;
            }
            Err(TryLockError::Error(e)) => {
                tracing::warn!("cannot lock {}: {e}", path.display());
                continue;
            }
        }
        // Another reconcile may have removed it between our open and our lock.
        if !same_file(&file, &path) {
            continue;
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        match serde_json::from_str::<Value>(&text)
            .ok()
            .as_ref()
            .and_then(Record::from_json)
        {
            Some(record) => {
                let stopped = stop_qemu(&record);
                // After QEMU: its helpers would exit with it, but a crash may have come
                // before QEMU started.
                let helpers = record
                    .uplink
                    .as_deref()
                    .is_some_and(crate::vmkit::uplink::stop_leftovers);
                remove_files(&record);
                tracing::info!(
                    "{id}: cleaned up after a build that ended without doing so (QEMU stopped: {stopped}, network helpers stopped: {helpers})"
                );
            }
            // Written empty or cut short: the process died before making anything.
            None => tracing::info!("{id}: removed an unreadable lease {}", path.display()),
        }
        let _ = std::fs::remove_file(&path);
        output.removed.push(id);
    }
    Ok(output)
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A process's start time in clock ticks after boot (`/proc/PID/stat` field 22), `None` when
/// there is no such process or it is a zombie.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Field 3 is the state; 22 the start time.
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn cmdline(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&bytes).replace('\0', " "))
}

/// Whether `pid` is still the process `record` names: same start time, marker on its
/// command line.
fn is_recorded_qemu(pid: u32, start: u64, marker: &str) -> bool {
    start_time(pid) == Some(start) && cmdline(pid).is_some_and(|c| c.contains(marker))
}

/// Stops the VM's QEMU if it still runs; true when one was stopped. Without a recorded pid
/// (the build died between starting QEMU and recording it), the process is found by its
/// marker.
fn stop_qemu(record: &Record) -> bool {
    let targets: Vec<(u32, u64)> = match record.qemu {
        Some((pid, start)) => vec![(pid, start)],
        None => find_by_marker(&record.marker),
    };
    let mut stopped = false;
    for (pid, start) in targets {
        if !is_recorded_qemu(pid, start, &record.marker) {
            continue;
        }
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill takes no pointers; the pid was checked just now to be the VM's QEMU.
        let sent = unsafe { libc::kill(raw, libc::SIGKILL) } == 0;
        if sent {
            stopped = true;
            let deadline = Instant::now() + Duration::from_secs(10);
            while start_time(pid) == Some(start) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    stopped
}

/// Processes whose command line holds `marker`, with their start times.
fn find_by_marker(marker: &str) -> Vec<(u32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| cmdline(*pid).is_some_and(|c| c.contains(marker)))
        .filter_map(|pid| Some((pid, start_time(pid)?)))
        .collect()
}

fn remove_files(record: &Record) {
    let _ = std::fs::remove_file(&record.qmp_socket);
    for name in VM_FILES {
        let _ = std::fs::remove_file(record.work_dir.join(name));
    }
    // Only when empty: anything else in it is not ours to remove.
    let _ = std::fs::remove_dir(&record.work_dir);
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};

    use super::*;

    fn record(dir: &Path, vm_id: &str, marker: &str) -> Record {
        let work_dir = dir.join(vm_id);
        std::fs::create_dir_all(&work_dir).unwrap();
        for name in ["disk.qcow2", "client_key", "seed.img"] {
            std::fs::write(work_dir.join(name), b"x").unwrap();
        }
        let qmp_socket = dir.join(format!("{vm_id}.qmp"));
        std::fs::write(&qmp_socket, b"").unwrap();
        Record {
            vm_id: vm_id.into(),
            work_dir,
            qmp_socket,
            marker: marker.into(),
            qemu: None,
            uplink: None,
        }
    }

    /// A process with `marker` on its command line (as `$0` of a shell).
    fn process_with(marker: &str) -> Child {
        Command::new("sh")
            .args(["-c", "while :; do sleep 1; done", marker])
            .spawn()
            .unwrap()
    }

    /// Reconciles once none of `stale` looks held: a process another test forks in this
    /// one holds a copy of a dropped lease's descriptor (and so its lock) until it execs.
    fn reconcile_once_free(dir: &Path, stale: &[&str]) -> ReconcileOutput {
        for _ in 0..250 {
            let held = stale.iter().any(|id| {
                let file = File::open(lease_path(dir, id)).unwrap();
                file.try_lock_shared().is_err()
            });
            if !held {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reconcile(dir).unwrap()
    }

    struct Reaped(Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn lease_files_stay_in_their_dir() {
        let dir = Path::new("/leases");
        assert_eq!(lease_path(dir, "r1-build"), dir.join("r1-build.lease"));
        assert_eq!(
            lease_path(dir, "../../etc/x"),
            dir.join("_._.._etc_x.lease")
        );
        assert_eq!(lease_path(dir, ".hidden"), dir.join("_hidden.lease"));
    }

    #[test]
    fn records_round_trip() {
        let record = Record {
            vm_id: "r1-build".into(),
            work_dir: "/w/r1-build".into(),
            qmp_socket: "/tmp/x.qmp".into(),
            marker: "file=/w/r1-build/disk.qcow2,if=virtio".into(),
            qemu: Some((42, 7)),
            uplink: Some("/tmp/imagebuilder-1.net".into()),
        };
        assert_eq!(Record::from_json(&record.to_json()), Some(record));
    }

    #[test]
    fn a_stale_lease_stops_its_process_and_removes_its_files_a_held_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let leases = dir.path().join("leases");
        let marker = format!("file={}/stale/disk.qcow2,if=virtio", dir.path().display());
        let mut orphan = Reaped(process_with(&marker));
        let stale = record(dir.path(), "stale", &marker);
        let mut lease = Lease::acquire(&leases, stale.clone()).unwrap();
        lease.set_qemu(orphan.0.id()).unwrap();
        let held_marker = format!("file={}/held/disk.qcow2,if=virtio", dir.path().display());
        let held_process = Reaped(process_with(&held_marker));
        let held = record(dir.path(), "held", &held_marker);
        let mut held_lease = Lease::acquire(&leases, held.clone()).unwrap();
        held_lease.set_qemu(held_process.0.id()).unwrap();
        // A held lease cannot be taken twice.
        assert!(Lease::acquire(&leases, held.clone()).is_err());
        drop(lease); // as a killed process would

        let output = reconcile_once_free(&leases, &["stale"]);
        assert_eq!(output.removed, ["stale"]);
        assert_eq!(output.in_use, ["held"]);
        assert!(
            orphan.0.try_wait().unwrap().is_some(),
            "the orphan was killed"
        );
        assert!(!stale.work_dir.exists() && !stale.qmp_socket.exists());
        assert!(!lease_path(&leases, "stale").exists());
        assert_eq!(held_process.0.id(), held_lease.record.qemu.unwrap().0);
        assert!(start_time(held_process.0.id()).is_some(), "left running");
        assert!(held.work_dir.join("disk.qcow2").exists() && held.qmp_socket.exists());
        held_lease.release();
        assert_eq!(reconcile(&leases).unwrap(), ReconcileOutput::default());
    }

    #[test]
    fn a_reused_pid_is_never_killed() {
        let dir = tempfile::tempdir().unwrap();
        let leases = dir.path().join("leases");
        let marker = format!("file={}/vm/disk.qcow2,if=virtio", dir.path().display());
        // The pid now belongs to a process without the marker, or with another start time.
        let other = Reaped(process_with("something-else"));
        let mut stale = record(dir.path(), "vm", &marker);
        let start = start_time(other.0.id()).unwrap();
        stale.qemu = Some((other.0.id(), start));
        drop(Lease::acquire(&leases, stale.clone()).unwrap());
        let marked = Reaped(process_with(&marker));
        let mut late = record(dir.path(), "late", &marker);
        late.qemu = Some((marked.0.id(), start_time(marked.0.id()).unwrap() + 1));
        drop(Lease::acquire(&leases, late).unwrap());

        let output = reconcile_once_free(&leases, &["late", "vm"]);
        assert_eq!(output.removed, ["late", "vm"]);
        assert!(start_time(other.0.id()).is_some(), "a stranger was killed");
        assert!(
            start_time(marked.0.id()).is_some(),
            "a reused pid was killed"
        );
        assert!(!stale.work_dir.exists(), "the files still go");
    }

    #[test]
    fn a_process_started_but_not_recorded_is_found_by_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let leases = dir.path().join("leases");
        let marker = format!("file={}/vm/disk.qcow2,if=virtio", dir.path().display());
        let mut orphan = Reaped(process_with(&marker));
        drop(Lease::acquire(&leases, record(dir.path(), "vm", &marker)).unwrap());
        assert_eq!(reconcile_once_free(&leases, &["vm"]).removed, ["vm"]);
        assert!(
            orphan.0.try_wait().unwrap().is_some(),
            "the orphan was killed"
        );
    }

    #[test]
    fn a_stale_lease_stops_the_network_helpers_naming_its_uplink_dir() {
        let dir = tempfile::tempdir().unwrap();
        let leases = dir.path().join("leases");
        let uplink = dir.path().join("imagebuilder-1.net");
        std::fs::create_dir_all(&uplink).unwrap();
        let marker = format!("file={}/vm/disk.qcow2,if=virtio", dir.path().display());
        // As slirp4netns names its API socket; QEMU itself already gone.
        let mut helper = Reaped(process_with(&format!("{}/s4n.sock", uplink.display())));
        let other = Reaped(process_with(&format!("{}x/s4n.sock", uplink.display())));
        let mut stale = record(dir.path(), "vm", &marker);
        stale.uplink = Some(uplink.clone());
        drop(Lease::acquire(&leases, stale).unwrap());
        assert_eq!(reconcile_once_free(&leases, &["vm"]).removed, ["vm"]);
        assert!(
            helper.0.try_wait().unwrap().is_some(),
            "the helper was killed"
        );
        assert!(
            start_time(other.0.id()).is_some(),
            "another VM's helper was killed"
        );
        assert!(!uplink.exists(), "the uplink dir goes");
    }

    #[test]
    fn an_empty_lease_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cut.lease"), b"").unwrap();
        assert_eq!(reconcile(dir.path()).unwrap().removed, ["cut"]);
        assert!(!dir.path().join("cut.lease").exists());
    }
}
