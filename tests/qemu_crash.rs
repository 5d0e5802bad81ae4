//! Crash recovery on QEMU: `imagebuilder template run` killed with SIGKILL while its build VM
//! runs leaves QEMU running (it has its own process group) with its overlay, seed and QMP
//! socket. The next use of the state directory (`template show` here) shows the run Failed,
//! since the run's lock is free, and its QEMU host reconcile (which every provision and every
//! `template` command runs first) stops that QEMU and removes its files.
#![cfg(feature = "qemu")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use imagebuilder::drivers::qemu::{QemuBuildHost, QemuConfig};
use serde_json::{json, Value};

/// Kills, when dropped, the CLI process and every QEMU this test recorded, so a failing
/// assertion never leaves a VM running. A QEMU pid is killed only while its command line
/// still names this test's state dir (a pid reused since is left alone).
struct Processes {
    cli: Option<Child>,
    qemu: Vec<u32>,
    needle: String,
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(mut cli) = self.cli.take() {
            let _ = cli.kill();
            let _ = cli.wait();
        }
        for pid in &self.qemu {
            if cmdline(*pid).is_some_and(|c| c.contains(&self.needle)) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn cmdline(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&bytes).replace('\0', " "))
}

/// Running slirp4netns processes whose command line names `uplink` (a VM's network dir).
fn network_helpers(uplink: &Path) -> Vec<String> {
    let needle = format!("{}/", uplink.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_running(*pid))
        .filter_map(cmdline)
        .filter(|c| c.contains("slirp4netns") && c.contains(&needle))
        .collect()
}

/// Whether `pid` runs (a zombie no longer does).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

fn imagebuilder(state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imagebuilder"));
    command.args(args).arg("--state-dir").arg(state);
    command
}

#[test]
fn a_killed_build_leaves_a_qemu_that_the_next_reconcile_stops_and_cleans_up() {
    let Some(images) = std::env::var_os("IMAGEBUILDER_FIXTURE_IMAGES") else {
        eprintln!("skipped: IMAGEBUILDER_FIXTURE_IMAGES is not set; `bash scripts/test.sh` builds the fixture images and sets it");
        return;
    };
    let image = PathBuf::from(images).join("debian-12-gen1.qcow2");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_crash");
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let template = dir.join("crash.json");
    std::fs::write(
        &template,
        json!({
            "source": {"type": "DiskImage", "uri": format!("file://{}", image.display()),
                       "format": "qcow2", "hyperVGeneration": "V1"},
            "customize": [{"type": "Shell", "name": "wait",
                           "inline": ["echo crash-test-started", "sleep 3600"]}],
            "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
        })
        .to_string(),
    )
    .unwrap();
    let created = imagebuilder(&state, &["template", "create", "crash"])
        .arg(&template)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let stderr = std::fs::File::create(dir.join("run.stderr")).unwrap();
    let mut cli = imagebuilder(
        &state,
        &[
            "template",
            "run",
            "crash",
            "--host",
            "qemu",
            "--accelerator",
            "tcg",
            "--cpus",
            "2",
            "--memory-mib",
            "1024",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(stderr)
    .spawn()
    .unwrap();
    let stdout = cli.stdout.take().unwrap();
    let mut processes = Processes {
        cli: Some(cli),
        qemu: Vec::new(),
        needle: state.display().to_string(),
    };
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Until the customizer runs in the guest (the stream ends if the CLI exits first).
    loop {
        match received.recv_timeout(Duration::from_secs(300)) {
            Ok(line) if line.contains("\"crash-test-started\"") => break,
            Ok(_) => {}
            Err(e) => panic!(
                "the build did not reach its customizer ({e}): {}",
                std::fs::read_to_string(dir.join("run.stderr")).unwrap_or_default()
            ),
        }
    }

    // What the VM owns, as its lease records it.
    let leases = state.join("qemu-leases");
    let lease_files: Vec<PathBuf> = std::fs::read_dir(&leases)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(lease_files.len(), 1, "{lease_files:?}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(&lease_files[0]).unwrap()).unwrap();
    let qemu = u32::try_from(record["qemu_pid"].as_u64().expect("the QEMU pid")).unwrap();
    processes.qemu.push(qemu);
    let vm_id = record["vm_id"].as_str().unwrap().to_owned();
    let work_dir = PathBuf::from(record["work_dir"].as_str().unwrap());
    let socket = PathBuf::from(record["qmp_socket"].as_str().unwrap());
    let uplink = PathBuf::from(
        record["uplink_dir"]
            .as_str()
            .expect("the isolated network's dir"),
    );
    assert!(
        cmdline(qemu)
            .is_some_and(|c| c.contains("qemu-system") && c.contains(&*state.to_string_lossy())),
        "the recorded pid {qemu} is the VM's QEMU"
    );

    // SIGKILL: nothing of the CLI runs any cleanup.
    let mut cli = processes.cli.take().unwrap();
    cli.kill().unwrap();
    cli.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(is_running(qemu), "QEMU outlives its build process");
    assert!(work_dir.join("disk.qcow2").exists() && work_dir.join("client_key").exists());
    assert!(socket.exists(), "{}", socket.display());
    assert_eq!(
        network_helpers(&uplink).len(),
        1,
        "slirp4netns outlives the build process with its QEMU"
    );

    // The next use of the state dir: the store tells the dead run from a live one by its
    // free run lock, and the QEMU host's reconcile stops QEMU and cleans up.
    let shown = imagebuilder(&state, &["template", "show", "crash"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&shown.stderr);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        shown["lastRunStatus"]["runState"], "Failed",
        "{}",
        shown["lastRunStatus"]
    );
    assert!(
        stderr.contains(&format!("cleaned up VM {vm_id}")),
        "{stderr}"
    );
    assert!(!is_running(qemu), "QEMU {qemu} was stopped");
    assert!(!work_dir.exists(), "{} is removed", work_dir.display());
    assert!(!socket.exists(), "{} is removed", socket.display());
    assert!(!lease_files[0].exists(), "the lease is removed");
    assert_eq!(
        network_helpers(&uplink),
        Vec::<String>::new(),
        "slirp4netns was stopped"
    );
    assert!(!uplink.exists(), "{} is removed", uplink.display());
    // Nothing else of this state dir runs.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(c) = cmdline(pid) {
            assert!(
                !(c.contains("qemu-system")
                    && c.contains(&*state.to_string_lossy())
                    && is_running(pid)),
                "left running: {c}"
            );
        }
    }
    // A new host, as the next build makes, finds nothing left to do.
    let host = QemuBuildHost::new(QemuConfig::default().with_lease_dir(&leases));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let again = runtime.block_on(host.reconcile()).unwrap();
    assert!(
        again.removed.is_empty() && again.in_use.is_empty(),
        "{again:?}"
    );
    drop(processes);
    let _ = std::fs::remove_dir_all(&dir);
}
