//! What a build must not leave in its output, checked on the captured disk offline (shared by
//! the QEMU and libvirt host tests): the build VM's identity, which a fresh boot would hide
//! (cloud-init deletes host keys and makes its instance anew on first boot).
#![allow(dead_code)] // Each test file uses a different part.

use std::path::Path;

use serde_json::Value;

/// The root filesystem of a captured disk, read offline with debugfs.
pub(crate) struct CapturedRoot {
    /// `RAW?offset=N`, as debugfs opens a filesystem inside a disk image.
    spec: String,
}

impl CapturedRoot {
    /// Converts `image` to raw under `dir` and finds its largest partition (the root, in the
    /// fixture and in stock images).
    pub(crate) fn open(image: &Path, dir: &Path) -> Self {
        let raw = dir.join("captured-root.raw");
        let status = std::process::Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(image)
            .arg(&raw)
            .status()
            .unwrap();
        assert!(status.success(), "qemu-img convert {}", image.display());
        let out = std::process::Command::new("sfdisk")
            .arg("--json")
            .arg(&raw)
            .output()
            .unwrap();
        let table: Value = serde_json::from_slice(&out.stdout).expect("sfdisk --json");
        let start = table["partitiontable"]["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .max_by_key(|p| p["size"].as_u64())
            .and_then(|p| p["start"].as_u64())
            .expect("a partition");
        Self {
            spec: format!("{}?offset={}", raw.display(), start * 512),
        }
    }

    fn debugfs(&self, request: &str) -> String {
        let out = std::process::Command::new("debugfs")
            .args(["-R", request, &self.spec])
            .output()
            .unwrap();
        assert!(out.status.success(), "debugfs -R {request}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The names in directory `path` (empty when it does not exist).
    pub(crate) fn names(&self, path: &str) -> Vec<String> {
        self.debugfs(&format!("ls -p {path}"))
            .lines()
            .filter_map(|l| l.split('/').nth(5).map(str::to_owned))
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .collect()
    }

    /// The contents of file `path` (empty when it does not exist).
    pub(crate) fn read(&self, path: &str) -> String {
        self.debugfs(&format!("cat {path}"))
    }
}

/// Checks a build's captured disk offline: no host key of the build VM, no cloud-init
/// instance state, no build user in the account files or under /home, no sudo rule for it.
pub(crate) fn assert_capture_generalized(root: &CapturedRoot) {
    let user = "imagebuilder";
    let host_keys: Vec<String> = root
        .names("/etc/ssh")
        .into_iter()
        .filter(|n| n.starts_with("ssh_host_"))
        .collect();
    assert_eq!(
        host_keys,
        Vec::<String>::new(),
        "host keys of the build VM in the capture"
    );
    assert_eq!(
        root.names("/var/lib/cloud/instances"),
        Vec::<String>::new(),
        "cloud-init instances of the build in the capture"
    );
    assert!(
        root.names("/etc").contains(&"passwd".to_owned()),
        "the root filesystem was read"
    );
    for file in ["/etc/passwd", "/etc/shadow", "/etc/group"] {
        let text = root.read(file);
        assert!(
            !text.lines().any(|l| l.starts_with(&format!("{user}:"))),
            "{file} of the capture names the build user:\n{text}"
        );
    }
    assert!(
        !root.names("/home").contains(&user.to_owned()),
        "the build user's home is in the capture"
    );
    for rules in root.names("/etc/sudoers.d") {
        let text = root.read(&format!("/etc/sudoers.d/{rules}"));
        assert!(
            !text.contains(user),
            "/etc/sudoers.d/{rules} of the capture: {text}"
        );
    }
}
