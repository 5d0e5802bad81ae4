//! Shared set-up of the libvirt tests on a real daemon: the URI the test command exports
//! (`scripts/libvirt-daemon.sh` starts libvirtd), the fixture images, a host, templates, a
//! target that keeps the capture, and leak checks through `virsh`.
#![allow(dead_code)] // Each test file uses a different part.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor, DistributorFactory,
};
use imagebuilder_core::engine::RunOptions;
use imagebuilder_core::run::RunOutput;
use imagebuilder_core::source::{BaseDisk, SourceResolver};
use imagebuilder_core::template::model::{
    DiskFormat, DistributorSpec, HyperVGeneration, OsType, SecurityType,
};
use imagebuilder_core::template::{parse_value, ImageTemplate, ParseOptions};
use imagebuilder_core::testkit::host::HostTestContext;
use imagebuilder_drivers::libvirt::{Accelerator, LibvirtBuildHost, LibvirtConfig, VmShape};
use serde_json::{json, Value};

/// The pool the tests use (made on demand by the first provision).
pub(crate) const POOL: &str = "imagebuilder-tests";

/// One test's world: a host on the real daemon, a directory, a fixture image.
pub(crate) struct Fixture {
    pub(crate) host: LibvirtBuildHost,
    pub(crate) uri: String,
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) leases: PathBuf,
    pub(crate) image: PathBuf,
    pub(crate) generation: HyperVGeneration,
}

impl Fixture {
    /// `None` (having said why) when the test command did not provide a daemon or images.
    pub(crate) fn new(test: &str, generation: HyperVGeneration) -> Option<Self> {
        let Some(uri) = std::env::var("IMAGEBUILDER_TEST_LIBVIRT_URI")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("skipped: IMAGEBUILDER_TEST_LIBVIRT_URI is not set; `bash scripts/test.sh` starts libvirtd and sets it");
            return None;
        };
        let Some(images) = std::env::var_os("IMAGEBUILDER_FIXTURE_IMAGES") else {
            eprintln!("skipped: IMAGEBUILDER_FIXTURE_IMAGES is not set; `bash scripts/test.sh` builds the fixture images and sets it");
            return None;
        };
        let file = match generation {
            HyperVGeneration::V1 => "debian-12-gen1.qcow2",
            HyperVGeneration::V2 => "debian-12-gen2.qcow2",
        };
        let image = PathBuf::from(images).join(file);
        assert!(
            image.exists(),
            "fixture image {} is missing",
            image.display()
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("libvirt")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let leases = dir.join("leases");
        let config = LibvirtConfig::default()
            .with_uri(&uri)
            .with_pool(
                POOL,
                Some(PathBuf::from("/var/lib/libvirt/images").join(POOL)),
            )
            .with_accelerator(Accelerator::Tcg)
            .with_shape(VmShape {
                cpus: 2,
                memory_mib: 1024,
            })
            .with_boot_timeout(Duration::from_secs(180))
            .with_lease_dir(&leases);
        Some(Self {
            host: LibvirtBuildHost::new(config),
            uri,
            name: format!("lv-{}", test.replace('_', "-")),
            dir,
            leases,
            image,
            generation,
        })
    }

    pub(crate) fn gen1(test: &str) -> Option<Self> {
        Self::new(test, HyperVGeneration::V1)
    }

    pub(crate) fn base_disk(&self) -> BaseDisk {
        BaseDisk {
            location: self.image.display().to_string(),
            format: DiskFormat::Qcow2,
            virtual_size: 0,
            sha256: None,
            os_type: OsType::Linux,
            hyper_v_generation: self.generation,
            security_type: SecurityType::Standard,
            exact_version: None,
        }
    }

    pub(crate) fn host_context(&self) -> HostTestContext {
        HostTestContext {
            base_disk: self.base_disk(),
            work_dir: self.dir.join("checks"),
        }
    }

    /// A template building the fixture image, with one target that keeps the capture.
    pub(crate) fn template(&self, edit: impl FnOnce(&mut Value)) -> ImageTemplate {
        let mut doc = json!({
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2025-10-01",
            "name": "libvirt-test",
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
        })
    }

    /// Run options whose VMs are named after this test (`lv-<test>-build`).
    pub(crate) fn run_options(&self) -> RunOptions {
        let mut options = RunOptions::new(&self.dir);
        options.run_id = self.name.clone();
        options
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("customization.log")).unwrap_or_default()
    }

    fn virsh(&self, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .args(["-q", "-c", &self.uri])
            .args(args)
            .output()
            .expect("virsh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Domains and volumes whose names contain `needle`, and lease files left.
    pub(crate) fn leftovers(&self, needle: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .virsh(&["list", "--all", "--name"])
            .lines()
            .chain(self.virsh(&["vol-list", "--pool", POOL]).lines())
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
            .filter(|n| n.starts_with("imagebuilder-") && n.contains(needle))
            .collect();
        if let Ok(entries) = std::fs::read_dir(&self.leases) {
            found.extend(entries.flatten().map(|e| e.path().display().to_string()));
        }
        found
    }

    /// No domain, volume or lease of this test is left (a canceled provision removes in the
    /// background: allow it a little time), and the run's work dir is gone.
    pub(crate) async fn assert_no_leaks(&self, needle: &str) {
        for _ in 0..100 {
            if self.leftovers(needle).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(self.leftovers(needle), Vec::<String>::new(), "left behind");
        assert!(
            !self.dir.join("work").exists(),
            "the run's work dir was left behind"
        );
    }
}

/// The vm id prefix the testkit's checks use.
pub(crate) fn testkit_needle(check: &str) -> String {
    format!("testkit-{check}-{}", std::process::id())
}

/// A target that copies the capture to a known path.
struct KeepCapture {
    path: PathBuf,
}

impl DistributorFactory for KeepCapture {
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError> {
        Ok(Arc::new(KeepCaptureTarget {
            name: spec.run_output_name().to_owned(),
            path: self.path.clone(),
        }))
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

/// The image's backing file, as qemu-img reports it (none for a standalone image).
pub(crate) fn backing_file(image: &Path) -> Option<String> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(image)
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    info["backing-filename"].as_str().map(str::to_owned)
}
