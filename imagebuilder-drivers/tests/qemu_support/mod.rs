//! Shared set-up of the QEMU tests: the fixture images, a host, templates, a target that keeps
//! the capture, and leak checks.
#![allow(dead_code)] // Each test file uses a different part.

#[path = "../capture_check/mod.rs"]
pub(crate) mod capture_check;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use capture_check::{assert_capture_generalized, CapturedRoot};
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor, DistributorFactory,
};
use imagebuilder_core::engine::{BuildEvent, Engine, RunOptions};
use imagebuilder_core::host::{BuildHost, BuildVm, OutputLine, ProvisionOptions, VmPurpose};
use imagebuilder_core::run::{RunOutput, RunState, RunSubState};
use imagebuilder_core::source::{BaseDisk, SourceResolver};
use imagebuilder_core::template::model::{
    DiskFormat, DistributorSpec, HyperVGeneration, OsType, SecurityType, VmProfile,
};
use imagebuilder_core::template::{parse_value, ImageTemplate, ParseOptions};
use imagebuilder_core::testkit::host::HostTestContext;
use imagebuilder_drivers::qemu::{Accelerator, QemuBuildHost, QemuConfig, VmShape};
use serde_json::{json, Value};

/// One test's world: a host, a directory, a fixture image.
pub(crate) struct Fixture {
    pub(crate) host: QemuBuildHost,
    /// This test's QMP socket dir (short, under /tmp); empty once every VM is gone.
    pub(crate) sockets: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) image: PathBuf,
    pub(crate) generation: HyperVGeneration,
    pub(crate) events: Arc<Mutex<Vec<BuildEvent>>>,
}

/// The directory the test command builds the fixture images into (skips, or fails under
/// CI, without it).
fn images_dir() -> Option<PathBuf> {
    imagebuilder_core::testkit::env::required_var(
        "IMAGEBUILDER_FIXTURE_IMAGES",
        "`bash scripts/test.sh` builds the fixture images and sets it",
    )
    .map(PathBuf::from)
}

/// The directory the test command builds the stock Debian image into
/// (`scripts/build-stock-image.sh`), under the same rule as [`images_dir`].
fn stock_images_dir() -> Option<PathBuf> {
    imagebuilder_core::testkit::env::required_var(
        "IMAGEBUILDER_STOCK_IMAGES",
        "`bash scripts/test.sh` builds the stock image and sets it",
    )
    .map(PathBuf::from)
}

/// How long a stock image may take to answer SSH: about 50 s on an idle machine under TCG
/// (systemd, Python cloud-init), several times that when the other QEMU tests share its two
/// cores. A boot that never comes still fails, just later.
const STOCK_BOOT_TIMEOUT: Duration = Duration::from_secs(420);

impl Fixture {
    pub(crate) fn new(test: &str, generation: HyperVGeneration) -> Option<Self> {
        let file = match generation {
            HyperVGeneration::V1 => "debian-12-gen1.qcow2",
            HyperVGeneration::V2 => "debian-12-gen2.qcow2",
        };
        let image = images_dir()?.join(file);
        Some(Self::with_image(
            test,
            image,
            generation,
            Duration::from_secs(180),
        ))
    }

    /// A test on the stock Debian 12 image (systemd, Debian's cloud-init and OpenSSH) instead
    /// of the fixture.
    pub(crate) fn stock_gen1(test: &str) -> Option<Self> {
        let image = stock_images_dir()?.join("debian-12-stock-gen1.qcow2");
        Some(Self::with_image(
            test,
            image,
            HyperVGeneration::V1,
            STOCK_BOOT_TIMEOUT,
        ))
    }

    fn with_image(
        test: &str,
        image: PathBuf,
        generation: HyperVGeneration,
        boot_timeout: Duration,
    ) -> Self {
        assert!(
            image.exists(),
            "fixture image {} is missing",
            image.display()
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("qemu")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sockets = std::env::temp_dir().join(format!("ibq-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&sockets);
        std::fs::create_dir_all(&sockets).unwrap();
        let config = QemuConfig::default()
            .with_socket_dir(&sockets)
            .with_lease_dir(dir.join("leases"))
            .with_accelerator(Accelerator::Tcg)
            .with_shape(VmShape {
                cpus: 2,
                memory_mib: 1024,
            })
            .with_boot_timeout(boot_timeout);
        Self {
            host: QemuBuildHost::new(config),
            sockets,
            dir,
            image,
            generation,
            events: Arc::default(),
        }
    }

    pub(crate) fn gen1(test: &str) -> Option<Self> {
        Self::new(test, HyperVGeneration::V1)
    }

    pub(crate) fn vm_id(&self, tag: &str) -> String {
        format!("{}-{tag}", self.dir.file_name().unwrap().to_string_lossy())
    }

    pub(crate) fn base_disk(&self) -> BaseDisk {
        disk_at(&self.image, self.generation)
    }

    pub(crate) fn virtual_size(&self) -> u64 {
        let out = std::process::Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(&self.image)
            .output()
            .unwrap();
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        info["virtual-size"].as_u64().unwrap()
    }

    pub(crate) fn host_context(&self) -> HostTestContext {
        HostTestContext {
            base_disk: self.base_disk(),
            work_dir: self.dir.join("checks"),
        }
    }

    pub(crate) fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A template building the fixture image, with one target that keeps the capture.
    pub(crate) fn template(&self, edit: impl FnOnce(&mut Value)) -> ImageTemplate {
        let mut doc = json!({
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2025-10-01",
            "name": "qemu-test",
            "properties": {
                "source": {"type": "DiskImage", "uri": format!("file://{}", self.image.display()), "format": "qcow2",
                           "hyperVGeneration": format!("{:?}", self.generation)},
                "customize": [],
                "distribute": [{"type": "VHD", "runOutputName": "capture"}]
            }
        });
        edit(&mut doc);
        let parsed =
            parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{:?}", d.all()));
        parsed.templates.into_iter().next().unwrap()
    }

    pub(crate) fn source(&self) -> Arc<SourceResolver> {
        Arc::new(SourceResolver::default())
    }

    pub(crate) fn captured_path(&self) -> PathBuf {
        self.dir.join("captured.img")
    }

    pub(crate) fn capture_targets(&self) -> Arc<dyn DistributorFactory> {
        Arc::new(KeepCapture {
            path: self.captured_path(),
            by_name: false,
        })
    }

    /// A target that keeps each capture at `<dir>/<runOutputName>.img`, for several builds
    /// through one engine.
    pub(crate) fn capture_targets_by_name(&self, dir: &Path) -> Arc<dyn DistributorFactory> {
        std::fs::create_dir_all(dir).unwrap();
        Arc::new(KeepCapture {
            path: dir.to_path_buf(),
            by_name: true,
        })
    }

    pub(crate) fn captured_image(&self) -> PathBuf {
        let path = self.captured_path();
        assert!(path.exists(), "the capture was kept at {}", path.display());
        path
    }

    pub(crate) fn run_options(&self) -> RunOptions {
        let mut options = RunOptions::new(&self.dir);
        options.artifacts_dir = self.dir.join("artifacts");
        options.log_path = Some(self.dir.join("customization.log"));
        let events = self.events.clone();
        options.events = Arc::new(move |e: BuildEvent| events.lock().unwrap().push(e));
        options
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("customization.log")).unwrap_or_default()
    }

    /// Boots `image` on its own with a fresh seed, as a user of the output would.
    pub(crate) async fn boot(&self, image: &Path, tag: &str) -> Box<dyn BuildVm> {
        self.boot_with(&self.host, image, tag).await
    }

    /// Boots `image` with a fresh seed whose user is [`OUTPUT_USER`], not the build user, so
    /// what the build left of its own user can be seen.
    pub(crate) async fn boot_as_output_user(&self, image: &Path, tag: &str) -> Box<dyn BuildVm> {
        let mut config = self.host.config().clone();
        config.build_user = OUTPUT_USER.into();
        self.boot_with(&QemuBuildHost::new(config), image, tag)
            .await
    }

    pub(crate) async fn boot_with(
        &self,
        host: &QemuBuildHost,
        image: &Path,
        tag: &str,
    ) -> Box<dyn BuildVm> {
        let dir = self.dir.join(format!("boot-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let format = if image.extension().is_some_and(|e| e == "raw") {
            DiskFormat::Raw
        } else {
            DiskFormat::Qcow2
        };
        let mut base = disk_at(image, self.generation);
        base.format = format;
        let options = ProvisionOptions {
            vm_id: self.vm_id(tag),
            purpose: VmPurpose::Validation,
            base_disk: base,
            vm_profile: VmProfile::default(),
            work_dir: dir,
            console: Arc::new(|_: OutputLine<'_>| {}),
        };
        match host.provision(options).await {
            Ok(vm) => vm,
            Err(e) => panic!(
                "booting {}: {}",
                image.display(),
                imagebuilder_core::error_chain(&e)
            ),
        }
    }

    /// QEMU processes started for this test (their command line names its directory).
    pub(crate) fn qemu_processes(&self) -> Vec<String> {
        qemu_processes_under(&self.dir)
            .into_iter()
            .map(|(pid, cmdline)| format!("{pid}: {cmdline}"))
            .collect()
    }

    /// The isolated network's helpers (slirp4netns) of this test's VMs: their command lines
    /// name the VM's uplink dir, in this test's socket dir.
    pub(crate) fn network_helpers(&self) -> Vec<String> {
        network_helpers_under(&self.sockets)
            .into_iter()
            .map(|(pid, cmdline)| format!("{pid}: {cmdline}"))
            .collect()
    }

    /// QEMU and its network helpers, as text.
    pub(crate) fn vm_processes(&self) -> Vec<String> {
        let mut all = self.qemu_processes();
        all.extend(self.network_helpers());
        all
    }

    /// What runs with their work dir in `work_dir` left behind, as text (empty when
    /// nothing): QEMU processes and their network helpers (with them their forwarded ports), files in `work_dir`
    /// (overlays, seeds, captures), QMP sockets. Waits a moment for processes killed from
    /// outside to exit.
    pub(crate) async fn leaks(&self, work_dir: &Path) -> Vec<String> {
        for _ in 0..100 {
            if self.vm_processes().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut leaks: Vec<String> = self
            .vm_processes()
            .into_iter()
            .map(|p| format!("process {p}"))
            .collect();
        if work_dir.exists() {
            leaks.push(format!("work dir {}", work_dir.display()));
        }
        if let Ok(entries) = std::fs::read_dir(&self.sockets) {
            leaks.extend(
                entries
                    .flatten()
                    .map(|e| format!("socket {}", e.path().display())),
            );
        }
        leaks
    }

    /// No QEMU process, no network helper and no work directory is left (the ports go with
    /// the processes).
    pub(crate) fn assert_no_leaks(&self) {
        assert_eq!(
            self.vm_processes(),
            Vec::<String>::new(),
            "QEMU processes or their network helpers left running"
        );
        assert!(
            !self.dir.join("work").exists(),
            "the run's work dir was left behind"
        );
    }

    /// Like `assert_no_leaks`, after giving processes killed from outside time to exit.
    pub(crate) async fn wait_for_no_leaks(&self) {
        for _ in 0..100 {
            if self.vm_processes().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            self.vm_processes(),
            Vec::<String>::new(),
            "QEMU processes or their network helpers left running"
        );
    }
}

/// A whole build of `f`'s image through the engine: a Shell step running `first` and then
/// recording what the output must not keep, a File step, a Restart (`restart_timeout`), a
/// Shell step after it, generalize, a validation, capture. Then the capture is checked
/// offline and booted as a user of the output would (a new seed, another user): the
/// customizations are there, nothing of the build's identity is.
pub(crate) async fn full_build(f: &Fixture, first: &[&str], restart_timeout: &str) {
    let payload = f.write_file("payload.txt", "payload from the host\n");
    let mut marker: Vec<&str> = first.to_vec();
    marker.extend([
        "echo customized | sudo tee /etc/imagebuilder-marker",
        "sudo cp /etc/machine-id /var/build-machine-id",
        "sudo cp /etc/ssh/ssh_host_ed25519_key.pub /var/build-host-key.pub",
        "sudo cp ~/.ssh/authorized_keys /var/build-authorized-keys",
    ]);
    let template = f.template(|t| {
        t["properties"]["customize"] = json!([
            {"type": "Shell", "name": "marker", "inline": marker},
            {"type": "File", "name": "payload", "sourceUri": format!("file://{}", payload.display()), "destination": "/tmp/payload.txt"},
            {"type": "Shell", "name": "keep-payload", "inline": ["sudo cp /tmp/payload.txt /etc/payload.txt"]},
            {"type": "Restart", "restartCheckCommand": "test -f /etc/imagebuilder-marker", "restartTimeout": restart_timeout},
            {"type": "Shell", "name": "after-restart", "inline": ["test -f /etc/payload.txt"]}
        ]);
        t["properties"]["validate"] = json!({"inVMValidations": [
            {"type": "Shell", "name": "marker-present", "inline": ["grep -q customized /etc/imagebuilder-marker"]}
        ]});
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let report = engine.run(&template, f.run_options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Succeeded, RunSubState::Distributing),
        "{}\n{}",
        report.message,
        f.log()
    );
    f.assert_no_leaks();

    let capture = f.captured_image();
    assert_capture_generalized(&CapturedRoot::open(&capture, &f.dir));
    let vm = f.boot_as_output_user(&capture, "fresh").await;
    let run = |command: &'static str| run_in(vm.as_ref(), command);
    assert_eq!(
        run("cat /etc/imagebuilder-marker").await,
        (0, "customized".to_owned())
    );
    assert_eq!(
        run("cat /etc/payload.txt").await,
        (0, "payload from the host".to_owned())
    );
    let (_, build_id) = run("cat /var/build-machine-id").await;
    let (_, new_id) = run("cat /etc/machine-id").await;
    assert!(
        !new_id.is_empty() && new_id != build_id,
        "machine-id was regenerated: {build_id} -> {new_id}"
    );
    let (_, build_host_key) = run("cat /var/build-host-key.pub").await;
    assert!(!build_host_key.is_empty(), "the build saw its host key");
    let (_, build_keys) = run("cat /var/build-authorized-keys").await;
    let (_, keys) = run("cat ~/.ssh/authorized_keys").await;
    for key in build_keys.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            !keys.contains(key),
            "the build user's key is still authorized in the image"
        );
    }
    assert_no_build_identity(vm.as_ref(), &build_host_key).await;
    vm.destroy().await.unwrap();
    f.assert_no_leaks();
}

/// The user of [`Fixture::boot_as_output_user`]'s seed.
pub(crate) const OUTPUT_USER: &str = "firstuser";

/// Runs `command` in `vm`'s guest; its exit code and output lines joined.
pub(crate) async fn run_in(vm: &dyn BuildVm, command: &str) -> (i32, String) {
    let lines = Mutex::new(Vec::new());
    let sink = |l: OutputLine<'_>| lines.lock().unwrap().push(l.text.to_owned());
    let result = vm
        .guest()
        .exec(&imagebuilder_core::host::ExecRequest::new(command), &sink)
        .await
        .expect("exec");
    (result.exit_code, lines.into_inner().unwrap().join("\n"))
}

/// Checks, in a VM booted from a build's output with [`Fixture::boot_as_output_user`], that
/// nothing of the build's identity is left (AIB's deprovisioning): no build user, home,
/// group or sudo rule, no cloud-init instance but this boot's, no host key of the build VM
/// (`build_host_key`: its public key, as the build saw it).
pub(crate) async fn assert_no_build_identity(vm: &dyn BuildVm, build_host_key: &str) {
    let user = "imagebuilder";
    for (check, command) in [
        (
            "the build user's account",
            format!("grep -s '^{user}:' /etc/passwd /etc/shadow /etc/group"),
        ),
        ("the build user's home", format!("ls -d /home/{user}")),
        (
            "the build user's sudo rules",
            format!("sudo grep -rs '{user}' /etc/sudoers /etc/sudoers.d"),
        ),
    ] {
        let (code, output) = run_in(vm, &command).await;
        assert_ne!(code, 0, "{check} is still in the image: {output}");
    }
    let (code, instances) = run_in(vm, "sudo ls /var/lib/cloud/instances").await;
    assert_eq!(
        (code, instances.trim()),
        (0, vm.id()),
        "cloud-init's per-instance state holds only this boot's instance"
    );
    let (_, host_keys) = run_in(vm, "sudo cat /etc/ssh/ssh_host_*_key.pub").await;
    let build_key = build_host_key
        .split_whitespace()
        .nth(1)
        .expect("a key line");
    assert!(
        !host_keys.contains(build_key),
        "a host key of the build VM is still in the image"
    );
    // The check itself works: the output user is there, with its sudo rule.
    let (code, _) = run_in(
        vm,
        &format!("grep -q '^{OUTPUT_USER}:' /etc/passwd && sudo -n true"),
    )
    .await;
    assert_eq!(code, 0, "the output user {OUTPUT_USER} exists and has sudo");
}

/// QEMU processes whose command line names a path under `dir`, with their pids.
pub(crate) fn qemu_processes_under(dir: &Path) -> Vec<(u32, String)> {
    processes_under(dir, "qemu-system")
}

/// slirp4netns processes whose command line names a path under `dir` (the socket dir their
/// VMs' uplink dirs are in), with their pids.
pub(crate) fn network_helpers_under(dir: &Path) -> Vec<(u32, String)> {
    processes_under(dir, "slirp4netns")
}

/// Live processes whose command line names `program` and a path under `dir`.
fn processes_under(dir: &Path, program: &str) -> Vec<(u32, String)> {
    // With the trailing slash, so test `cancel` does not see `cancel_booting`'s VMs.
    let needle = format!("{}/", dir.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // A zombie's cmdline is empty, so only live ones count.
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(program) && cmdline.contains(&needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

fn disk_at(path: &Path, generation: HyperVGeneration) -> BaseDisk {
    BaseDisk {
        location: path.display().to_string(),
        format: DiskFormat::Qcow2,
        virtual_size: 0,
        sha256: None,
        os_type: OsType::Linux,
        hyper_v_generation: generation,
        security_type: SecurityType::Standard,
        exact_version: None,
    }
}

/// A target that copies the capture to a known path, so tests can boot it.
struct KeepCapture {
    path: PathBuf,
    /// `path` is a directory holding `<runOutputName>.img`.
    by_name: bool,
}

impl DistributorFactory for KeepCapture {
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError> {
        let name = spec.run_output_name().to_owned();
        let path = if self.by_name {
            self.path.join(format!("{name}.img"))
        } else {
            self.path.clone()
        };
        Ok(Arc::new(KeepCaptureTarget { name, path }))
    }
}

struct KeepCaptureTarget {
    name: String,
    path: PathBuf,
}

#[async_trait]
impl Distributor for KeepCaptureTarget {
    fn run_output_name(&self) -> &str {
        &self.name
    }

    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError> {
        tokio::fs::copy(&image.path, &self.path)
            .await
            .map_err(|e| DistributeError::Failed {
                run_output_name: self.name.clone(),
                operation: "copy the capture".into(),
                source: Box::new(e),
            })?;
        cx.progress.bytes(&self.name, image.size, image.size);
        Ok(RunOutput {
            run_output_name: self.name.clone(),
            artifact_id: self.path.display().to_string(),
            artifact_uri: self.path.display().to_string(),
            sha256: image.sha256.clone(),
            size: image.size,
            tags: Default::default(),
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Only when empty: a leak stays visible for whoever looks next.
        let _ = std::fs::remove_dir(&self.sockets);
    }
}
