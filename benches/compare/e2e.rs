//! End to end: the same customizations on the same fixture image, built by a bare script
//! (the guest's own time), by imagebuilder, by Packer configured for speed and by Packer with
//! its defaults. The after-build figures come from the same runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::measure::{run_quiet, run_watched, Watched};
use crate::Setup;

/// The contenders, in the order of the first round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contender {
    Bare,
    Ours,
    PackerSkilled,
    PackerDefault,
}

impl Contender {
    pub(crate) const ALL: [Self; 4] = [
        Self::Bare,
        Self::Ours,
        Self::PackerSkilled,
        Self::PackerDefault,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare script (guest time)",
            Self::Ours => "imagebuilder",
            Self::PackerSkilled => "Packer, skilled",
            Self::PackerDefault => "Packer, defaults",
        }
    }
}

/// The shell steps, the same for every contender (the restart sits between two and three).
const STEP_ONE: &str = "echo one | sudo tee /etc/bench-one >/dev/null";
const STEP_TWO: &str = "sudo mkdir -p /opt && sudo cp /tmp/payload.bin /opt/payload.bin";
const STEP_THREE: &str =
    "test -f /opt/payload.bin && echo three | sudo tee /etc/bench-three >/dev/null";
/// What imagebuilder's hidden generalize step does on Linux; the others run it as a last step
/// so every contender leaves the same image.
const GENERALIZE: &str = "sudo cloud-init clean --logs --seed; sudo rm -f /etc/ssh/ssh_host_*; \
     sudo truncate -s 0 /etc/machine-id; rm -f ~/.bash_history; export HISTSIZE=0; sync";

/// Inputs every run shares: key, seed volume, payload.
pub(crate) struct Inputs {
    dir: PathBuf,
    key: PathBuf,
    seed: PathBuf,
    payload: PathBuf,
    payload_sha256: String,
}

/// Makes the SSH key, the NoCloud seed that installs it for the user `bench`, and the payload.
pub(crate) fn inputs(setup: &Setup) -> Result<Inputs, String> {
    let dir = setup.data.join("e2e");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let key = dir.join("id_ed25519");
    if !key.exists() {
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
            .arg(&key))?;
    }
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .map_err(|e| format!("read the public key: {e}"))?;
    let user_data = format!(
        "#cloud-config\nusers:\n  - name: bench\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n    ssh_authorized_keys:\n      - {}\n",
        public.trim()
    );
    std::fs::write(dir.join("user-data"), user_data).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("meta-data"),
        "instance-id: bench-build\nlocal-hostname: bench\n",
    )
    .map_err(|e| e.to_string())?;
    let seed = dir.join("seed.img");
    let _ = std::fs::remove_file(&seed);
    ok(Command::new("truncate").args(["-s", "2M"]).arg(&seed))?;
    ok(Command::new("mkfs.vfat").args(["-n", "CIDATA"]).arg(&seed))?;
    ok(Command::new("mcopy")
        .arg("-i")
        .arg(&seed)
        .arg(dir.join("user-data"))
        .arg(dir.join("meta-data"))
        .arg("::/"))?;
    let payload = dir.join("payload.bin");
    let bytes = crate::noise(1 << 20, 42);
    std::fs::write(&payload, &bytes).map_err(|e| e.to_string())?;
    let payload_sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    Ok(Inputs {
        dir,
        key,
        seed,
        payload,
        payload_sha256,
    })
}

fn ok(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One run's figures, in seconds (RSS in MiB).
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFigures {
    pub(crate) wall: f64,
    /// Named phases in order, seconds each.
    pub(crate) phases: Vec<(String, f64)>,
    /// From the guest's power-off (the VM process exit) to every output written, including
    /// the qemu-img VHD conversion a Packer user runs afterwards.
    pub(crate) after_build: Option<f64>,
    /// Packer only: the qemu-img VHD conversion alone.
    pub(crate) vhd_convert: Option<f64>,
    /// Peak RSS of the builder process itself.
    pub(crate) builder_rss_mib: f64,
    /// Peak RSS of its largest helper (qemu-img, ...), the VMs excepted.
    pub(crate) helper_rss_mib: f64,
}

pub(crate) fn run(
    setup: &Setup,
    inputs: &Inputs,
    who: Contender,
    round: usize,
) -> Result<RunFigures, String> {
    let dir = inputs.dir.join(format!("run-{round}-{who:?}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = match who {
        Contender::Bare => bare(setup, inputs, &dir),
        Contender::Ours => ours(setup, inputs, &dir),
        Contender::PackerSkilled => packer(setup, inputs, &dir, true),
        Contender::PackerDefault => packer(setup, inputs, &dir, false),
    };
    if result.is_ok() && !setup.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    crate::measure::settle();
    result
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Start and exit of the build VM: the longest-lived emulator process (Packer also runs
/// `qemu-system-x86_64` briefly to ask its version).
fn build_vm(vms: &[(Duration, Option<Duration>)], wall: f64) -> Result<(f64, f64), String> {
    vms.iter()
        .map(|(start, exit)| (secs(*start), exit.map(secs).unwrap_or(wall)))
        .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
        .ok_or_else(|| "no VM process was seen".to_owned())
}

// --- imagebuilder -------------------------------------------------------------------------

fn ours(setup: &Setup, inputs: &Inputs, dir: &Path) -> Result<RunFigures, String> {
    let out = dir.join("out");
    let template = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2025-10-01",
        "name": "bench",
        "location": "local",
        "properties": {
            "source": {
                "type": "DiskImage",
                "uri": setup.fixture.display().to_string(),
                "format": "qcow2",
                "osType": "Linux",
                "hyperVGeneration": "V1"
            },
            "customize": [
                {"type": "Shell", "name": "one", "inline": [STEP_ONE]},
                {"type": "File", "name": "payload",
                 "sourceUri": format!("file://{}", inputs.payload.display()),
                 "destination": "/tmp/payload.bin",
                 "sha256Checksum": inputs.payload_sha256},
                {"type": "Shell", "name": "two", "inline": [STEP_TWO]},
                {"type": "Restart", "name": "restart"},
                {"type": "Shell", "name": "three", "inline": [STEP_THREE]}
            ],
            "distribute": [
                {"type": "ObjectStore", "runOutputName": "qcow2",
                 "uri": out.join("image.qcow2").display().to_string(), "format": "qcow2"},
                {"type": "VHD", "runOutputName": "vhd",
                 "uri": out.join("image.vhd").display().to_string()}
            ],
            "vmProfile": {"vmSize": crate::VM_SIZE},
            "buildTimeoutInMinutes": 30
        }
    });
    let path = dir.join("template.json");
    std::fs::write(&path, template.to_string()).map_err(|e| e.to_string())?;
    let watched = run_watched(
        Command::new(&setup.imagebuilder)
            .args(["build", "--host", "qemu", "--json", "--state-dir"])
            .arg(dir.join("state"))
            .arg(&path)
            .env("RUST_LOG", "warn"),
        &dir.join("stderr.log"),
    )
    .map_err(|e| format!("imagebuilder build: {e}"))?;
    if !watched.outcome.status.success() {
        return Err(format!(
            "imagebuilder build failed ({}); see {}",
            watched.outcome.status,
            dir.display()
        ));
    }
    our_figures(&watched)
}

/// Phases from our own events, timed on arrival, and the VM's life from the process tree.
fn our_figures(w: &Watched) -> Result<RunFigures, String> {
    let events: Vec<(f64, Value)> = w
        .lines
        .iter()
        .filter_map(|l| Some((secs(l.at), serde_json::from_str::<Value>(&l.text).ok()?)))
        .collect();
    let at = |pred: &dyn Fn(&Value) -> bool| events.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t);
    let last =
        |pred: &dyn Fn(&Value) -> bool| events.iter().rev().find(|(_, e)| pred(e)).map(|(t, _)| *t);
    let event = |name: &'static str| move |e: &Value| e["event"] == name;
    let wall = secs(w.outcome.wall);
    let (vm_start, vm_exit) = build_vm(&w.vms, wall)?;
    let provisioned = at(&event("vmProvisioned")).ok_or("no vmProvisioned event")?;
    let generalized = last(&|e| e["event"] == "stepFinished" && e["step"]["kind"] == "Generalize")
        .ok_or("no Generalize step")?;
    let captured = at(&event("captured")).ok_or("no captured event")?;
    let targets_done = last(&event("targetFinished")).ok_or("no targetFinished event")?;
    let mut steps = 0.0;
    let mut restart = 0.0;
    let mut generalize = 0.0;
    for (_, e) in &events {
        if e["event"] == "stepFinished" {
            let d = e["duration"].as_f64().unwrap_or(0.0) / 1000.0;
            match e["step"]["kind"].as_str() {
                Some("Restart") => restart += d,
                Some("Generalize") => generalize += d,
                _ => steps += d,
            }
        }
    }
    let customizing = generalized - provisioned;
    let phases = vec![
        (
            "prepare (source, artifacts, overlay, seed)".into(),
            vm_start,
        ),
        ("boot to SSH".into(), provisioned - vm_start),
        ("steps: Shell x3 + File".into(), steps),
        ("step: Restart".into(), restart),
        ("step: Generalize".into(), generalize),
        (
            "between steps".into(),
            customizing - steps - restart - generalize,
        ),
        ("power-off".into(), vm_exit - generalized),
        ("capture (flatten + sha256)".into(), captured - vm_exit),
        (
            "write outputs (qcow2 + VHD)".into(),
            targets_done - captured,
        ),
        ("finish (cleanup, run record)".into(), wall - targets_done),
    ];
    Ok(RunFigures {
        wall,
        phases,
        after_build: Some(wall - vm_exit),
        vhd_convert: None,
        builder_rss_mib: mib(w.top_hwm_kib),
        helper_rss_mib: mib(w.helper_hwm_kib),
    })
}

// --- Packer ---------------------------------------------------------------------------------

fn packer(setup: &Setup, inputs: &Inputs, dir: &Path, skilled: bool) -> Result<RunFigures, String> {
    let out = dir.join("output");
    let disk = out.join("image.qcow2");
    let shell = |cmd: &str| json!({"type": "shell", "inline": [cmd]});
    let mut builder = json!({
        "type": "qemu",
        "iso_url": setup.fixture.display().to_string(),
        "iso_checksum": "none",
        "disk_image": true,
        "format": "qcow2",
        // /dev/kvm exists here but hangs; Packer would pick kvm for it.
        "accelerator": "tcg",
        "cpus": crate::VM_CPUS,
        "memory": crate::VM_MEMORY_MIB,
        // There is no display on this machine.
        "headless": true,
        "ssh_username": "bench",
        "ssh_private_key_file": inputs.key.display().to_string(),
        "shutdown_command": "sudo poweroff",
        "output_directory": out.display().to_string(),
        "vm_name": "image.qcow2",
        // The seed is a second drive; a -drive override replaces Packer's own, so the build
        // disk is given here exactly as Packer would attach it.
        "qemuargs": [
            ["-drive", format!("file={},if=virtio,cache=writeback,discard=ignore,format=qcow2", disk.display())],
            ["-drive", format!("file={},if=virtio,format=raw,readonly=on", inputs.seed.display())]
        ]
    });
    if skilled {
        let b = builder.as_object_mut().ok_or("builder")?;
        // "0s" means the 10 s default in Packer 1.6; a negative wait skips it.
        b.insert("boot_wait".into(), json!("-1s"));
        b.insert("ssh_timeout".into(), json!("3m"));
        // The copied image is already a standalone qcow2: no second full rewrite.
        b.insert("skip_compaction".into(), json!(true));
    }
    let template = json!({
        "builders": [builder],
        "provisioners": [
            shell(STEP_ONE),
            {"type": "file", "source": inputs.payload.display().to_string(), "destination": "/tmp/payload.bin"},
            shell(STEP_TWO),
            {"type": "shell", "inline": ["sudo reboot"], "expect_disconnect": true},
            shell(STEP_THREE),
            shell(GENERALIZE)
        ]
    });
    let path = dir.join("packer.json");
    std::fs::write(&path, template.to_string()).map_err(|e| e.to_string())?;
    let watched = run_watched(
        Command::new("packer")
            .args(["build", "-color=false"])
            .arg(&path)
            .current_dir(dir)
            .env("CHECKPOINT_DISABLE", "1")
            .env("PACKER_CACHE_DIR", dir.join("packer_cache")),
        &dir.join("stderr.log"),
    )
    .map_err(|e| format!("packer build: {e}"))?;
    let log: String = watched
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("stdout.log"), &log).map_err(|e| e.to_string())?;
    if !watched.outcome.status.success() || !disk.exists() {
        return Err(format!(
            "packer build failed ({}); see {}",
            watched.outcome.status,
            dir.display()
        ));
    }
    // What a Packer user runs next to get the VHD Azure takes.
    let vhd = run_quiet(
        Command::new("qemu-img")
            .args([
                "convert",
                "-f",
                "qcow2",
                "-O",
                "vpc",
                "-o",
                "subformat=fixed,force_size",
            ])
            .arg(&disk)
            .arg(out.join("image.vhd")),
    )
    .map_err(|e| format!("qemu-img convert to VHD: {e}"))?;
    let wall = secs(watched.outcome.wall);
    let line_at = |needle: &str| {
        watched
            .lines
            .iter()
            .find(|l| l.text.contains(needle))
            .map(|l| secs(l.at))
    };
    let (vm_start, vm_exit) = build_vm(&watched.vms, wall)?;
    let connected = line_at("Connected to SSH").ok_or("no 'Connected to SSH' line")?;
    let halting = line_at("Gracefully halting").ok_or("no 'Gracefully halting' line")?;
    let phases = vec![
        ("prepare (copy image, ports)".into(), vm_start),
        (
            "boot to SSH (incl. boot_wait, SSH polling)".into(),
            connected - vm_start,
        ),
        (
            "provisioners (incl. restart, generalize)".into(),
            halting - connected,
        ),
        ("power-off".into(), vm_exit - halting),
        ("after power-off (compaction if any)".into(), wall - vm_exit),
        ("qemu-img convert to fixed VHD".into(), secs(vhd.wall)),
    ];
    Ok(RunFigures {
        wall,
        phases,
        after_build: Some(wall - vm_exit + secs(vhd.wall)),
        vhd_convert: Some(secs(vhd.wall)),
        builder_rss_mib: mib(watched.top_hwm_kib),
        helper_rss_mib: mib(watched.helper_hwm_kib.max(vhd.max_rss_kib)),
    })
}

// --- bare script ----------------------------------------------------------------------------

/// The guest's own time: QEMU started by hand with the same VM shape, the same commands over
/// one multiplexed OpenSSH connection, no image written afterwards.
fn bare(setup: &Setup, inputs: &Inputs, dir: &Path) -> Result<RunFigures, String> {
    let started = Instant::now();
    let overlay = dir.join("overlay.qcow2");
    ok(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&setup.fixture)
        .arg(&overlay))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let console = dir.join("console.log");
    let spawned = started.elapsed();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "pc",
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
        ])
        .args([
            "-smp",
            &crate::VM_CPUS.to_string(),
            "-m",
            &format!("{}M", crate::VM_MEMORY_MIB),
        ])
        .args(["-nodefaults", "-display", "none", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=qcow2,cache=writeback",
            overlay.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,readonly=on",
            inputs.seed.display()
        ))
        .args([
            "-netdev",
            &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"),
        ])
        .args([
            "-device",
            "virtio-net-pci,netdev=n0",
            "-device",
            "virtio-rng-pci",
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("start qemu: {e}"))?;
    let result = (|| {
        let control = dir.join("ctl");
        let ssh = |extra: &[&str]| {
            let mut c = Command::new("ssh");
            c.arg("-i")
                .arg(&inputs.key)
                .args([
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                ])
                .args(["-o", "LogLevel=ERROR", "-o", "BatchMode=yes"])
                .arg("-o")
                .arg(format!("ControlPath={}", control.display()))
                .args(["-p", &port.to_string()])
                .args(extra)
                .arg("bench@127.0.0.1");
            c
        };
        let ready = |count: usize| -> Result<(), String> {
            let deadline = Instant::now() + Duration::from_secs(180);
            while Instant::now() < deadline {
                let text = std::fs::read_to_string(&console).unwrap_or_default();
                if text.matches("SSH ready").count() >= count {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err("the guest never reached SSH".into())
        };
        let connect = |count: usize| -> Result<(), String> {
            ready(count)?;
            ok(ssh(&["-M", "-f", "-N", "-o", "ConnectTimeout=30"])
                .stdin(std::process::Stdio::null()))
        };
        let timed = |f: &dyn Fn() -> Result<(), String>| -> Result<f64, String> {
            let t = Instant::now();
            f()?;
            Ok(t.elapsed().as_secs_f64())
        };
        let exec = |cmd: &str| ok(ssh(&[]).arg(cmd).stdin(std::process::Stdio::null()));
        connect(1)?;
        let boot = started.elapsed() - spawned;
        let mut commands = 0.0;
        commands += timed(&|| exec(STEP_ONE))?;
        commands += timed(&|| {
            ok(Command::new("scp")
                .args([
                    "-q",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                ])
                .arg("-o")
                .arg(format!("ControlPath={}", control.display()))
                .args(["-P", &port.to_string()])
                .arg(&inputs.payload)
                .arg("bench@127.0.0.1:/tmp/payload.bin"))
        })?;
        commands += timed(&|| exec(STEP_TWO))?;
        let restart = timed(&|| {
            // The connection drops as the guest goes down.
            let _ = ssh(&[])
                .arg("sudo reboot")
                .stdin(std::process::Stdio::null())
                .output();
            let _ = ssh(&["-O", "exit"]).output();
            connect(2)
        })?;
        commands += timed(&|| exec(STEP_THREE))?;
        commands += timed(&|| exec(GENERALIZE))?;
        let off = Instant::now();
        let _ = ssh(&[])
            .arg("sudo poweroff")
            .stdin(std::process::Stdio::null())
            .output();
        let _ = ssh(&["-O", "exit"]).output();
        Ok::<_, String>((boot, commands, restart, off))
    })();
    let (boot, commands, restart, off) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = qemu.kill();
            let _ = qemu.wait();
            return Err(e);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if qemu.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = qemu.kill();
            return Err("the guest did not power off".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let poweroff = off.elapsed().as_secs_f64();
    let wall = started.elapsed().as_secs_f64();
    Ok(RunFigures {
        wall,
        phases: vec![
            ("prepare (overlay)".into(), secs(spawned)),
            ("boot to SSH".into(), secs(boot)),
            ("commands (Shell x3, upload, generalize)".into(), commands),
            ("restart to SSH".into(), restart),
            ("power-off".into(), poweroff),
        ],
        after_build: None,
        vhd_convert: None,
        builder_rss_mib: 0.0,
        helper_rss_mib: 0.0,
    })
}
