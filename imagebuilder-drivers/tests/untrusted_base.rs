//! A source image is someone else's file: the VM hosts check it with our own reader before
//! qemu-img or QEMU opens it, and refuse what reaches outside the file or is not the declared
//! format, naming the file, before any VM process, overlay or seed exists. No VM boots here.
#![cfg(any(feature = "qemu", feature = "libvirt"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use imagebuilder_core::host::{BuildHost, OutputLine, ProvisionOptions, VmPurpose};
use imagebuilder_core::source::BaseDisk;
use imagebuilder_core::template::model::{
    DiskFormat, HyperVGeneration, OsType, SecurityType, VmProfile,
};

/// A directory of crafted images, and a work dir per provision.
struct World {
    dir: PathBuf,
}

impl World {
    fn new(test: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("untrusted_base")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn qemu_img(&self, args: &[&str]) {
        let out = Command::new("qemu-img").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "qemu-img {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `qemu-img create -f qcow2 [-o option]... NAME SIZE`.
    fn qcow2(&self, name: &str, size: &str, options: &[&str]) -> PathBuf {
        let path = self.path(name);
        let mut args = vec!["create", "-q", "-f", "qcow2"];
        for option in options {
            args.extend(["-o", option]);
        }
        args.extend([path.to_str().unwrap(), size]);
        self.qemu_img(&args);
        path
    }

    /// A qcow2 image whose backing file is a host file the guest must never see.
    fn with_backing_file(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        self.qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "/etc/hostname",
            "-F",
            "raw",
            path.to_str().unwrap(),
            "1M",
        ]);
        path
    }

    fn options(&self, image: &Path, format: DiskFormat, work: &str) -> ProvisionOptions {
        let work_dir = self.path(work);
        std::fs::create_dir_all(&work_dir).unwrap();
        ProvisionOptions {
            vm_id: format!("untrusted-{work}"),
            purpose: VmPurpose::Build,
            base_disk: BaseDisk {
                location: format!("file://{}", image.display()),
                format,
                virtual_size: 0,
                sha256: None,
                os_type: OsType::Linux,
                hyper_v_generation: HyperVGeneration::V1,
                security_type: SecurityType::Standard,
                exact_version: None,
            },
            vm_profile: VmProfile::default(),
            work_dir,
            console: Arc::new(|_: OutputLine<'_>| {}),
        }
    }

    /// Provisioning `image` as `format` on `host` fails saying each of `words`, and leaves
    /// nothing: the work dir stays empty, no process names it, no lease names it.
    async fn assert_refused(
        &self,
        host: &dyn BuildHost,
        image: &Path,
        format: DiskFormat,
        words: &[&str],
    ) {
        let work = format!(
            "work-{}-{}-{format}",
            host.name(),
            image.file_name().unwrap().to_string_lossy()
        );
        let options = self.options(image, format, &work);
        let work_dir = options.work_dir.clone();
        let err = match host.provision(options).await {
            Ok(vm) => {
                vm.destroy().await.unwrap();
                panic!("{} as {format} was accepted", image.display());
            }
            Err(e) => imagebuilder_core::error_chain(&e),
        };
        eprintln!("{}: {err}", host.name());
        let mut expected = vec![image.display().to_string(), format!("declared {format}")];
        expected.extend(words.iter().map(|w| (*w).to_owned()));
        for word in &expected {
            assert!(err.contains(word.as_str()), "{err:?} should say {word:?}");
        }
        let left: Vec<_> = std::fs::read_dir(&work_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{work}: left behind {left:?} ({err})");
        let needle = work_dir.display().to_string();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                assert!(!cmdline.contains(&needle), "left running: {cmdline}");
            }
        }
        if let Ok(leases) = std::fs::read_dir(self.path("leases")) {
            let leases: Vec<_> = leases.flatten().map(|e| e.file_name()).collect();
            assert!(leases.is_empty(), "leases left: {leases:?}");
        }
    }

    /// Every refusal the checks make, on `host`.
    async fn refusals(&self, host: &dyn BuildHost) {
        let backed = self.with_backing_file("backed.qcow2");
        self.assert_refused(
            host,
            &backed,
            DiskFormat::Qcow2,
            &["backing file", "/etc/hostname"],
        )
        .await;
        // The same image under a raw name, declared raw: QEMU would not follow the backing
        // file then, but a qcow2 image taken for raw is refused rather than guessed at.
        let renamed = self.path("backed.raw");
        std::fs::copy(&backed, &renamed).unwrap();
        for format in [DiskFormat::Raw, DiskFormat::Vhd] {
            self.assert_refused(host, &renamed, format, &["starts with a qcow2 header"])
                .await;
        }
        let data = self.path("data.bin");
        let external = self.qcow2(
            "external.qcow2",
            "1M",
            &[&format!("data_file={}", data.display())],
        );
        self.assert_refused(host, &external, DiskFormat::Qcow2, &["external data file"])
            .await;
        let huge = self.qcow2("huge.qcow2", "100T", &[]);
        self.assert_refused(host, &huge, DiskFormat::Qcow2, &["virtual size", "limit"])
            .await;
        let raw = self.path("plain.raw");
        std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
        self.assert_refused(
            host,
            &raw,
            DiskFormat::Qcow2,
            &["no qcow2 header", "raw data"],
        )
        .await;
    }
}

#[cfg(feature = "qemu")]
#[tokio::test(flavor = "multi_thread")]
async fn the_qemu_host_refuses_untrusted_bases_before_anything_exists() {
    use imagebuilder_drivers::qemu::{Accelerator, QemuBuildHost, QemuConfig};
    let world = World::new("qemu");
    let sockets = std::env::temp_dir().join(format!("ibq-{}-untrusted", std::process::id()));
    std::fs::create_dir_all(&sockets).unwrap();
    let host = QemuBuildHost::new(
        QemuConfig::default()
            .with_accelerator(Accelerator::Tcg)
            .with_socket_dir(&sockets)
            .with_lease_dir(world.path("leases")),
    );
    world.refusals(&host).await;
    let sockets_left: Vec<_> = std::fs::read_dir(&sockets)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(sockets_left.is_empty(), "sockets left: {sockets_left:?}");
    std::fs::remove_dir(&sockets).unwrap();
}

/// libvirt's built-in test driver needs no daemon: the checks come before the connection.
#[cfg(feature = "libvirt")]
#[tokio::test(flavor = "multi_thread")]
async fn the_libvirt_host_refuses_untrusted_bases_before_anything_exists() {
    use imagebuilder_drivers::libvirt::{LibvirtBuildHost, LibvirtConfig};
    let world = World::new("libvirt");
    let host = LibvirtBuildHost::new(
        LibvirtConfig::default()
            .with_uri("test:///default")
            .with_lease_dir(world.path("leases")),
    );
    world.refusals(&host).await;
}
