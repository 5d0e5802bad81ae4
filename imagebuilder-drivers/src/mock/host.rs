//! The mock host and the record of every call made to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use imagebuilder_core::host::{
    BuildHost, BuildVm, Capabilities, CapturedDisk, Guest, HostError, ProvisionOptions, VmAccess,
    VmPurpose,
};
use imagebuilder_core::source::BaseDisk;

use super::guest::MockGuest;
use super::rules::{MockResponse, Rules};

/// An operation of the host or its guests, to inject failures and delays into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MockOp {
    /// Provisioning a build VM.
    ProvisionBuild,
    /// Provisioning a validation VM.
    ProvisionValidation,
    /// Running a command.
    Exec,
    /// Uploading a file.
    Upload,
    /// Restarting the guest.
    Restart,
    /// Shutting the VM down.
    Shutdown,
    /// Capturing the disk.
    Capture,
    /// Destroying the VM.
    Destroy,
}

/// One call made to the mock, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockCall {
    /// A VM was provisioned.
    Provision {
        /// Its id.
        vm_id: String,
        /// Build or validation.
        purpose: VmPurpose,
        /// The disk it booted.
        base_disk: BaseDisk,
    },
    /// A command ran.
    Exec {
        /// The VM.
        vm_id: String,
        /// The command line.
        command: String,
        /// With elevated rights.
        elevated: bool,
    },
    /// A file was uploaded.
    Upload {
        /// The VM.
        vm_id: String,
        /// Where in the guest.
        remote: String,
        /// What it held.
        contents: Vec<u8>,
    },
    /// The guest restarted.
    Restart {
        /// The VM.
        vm_id: String,
        /// The restart command.
        command: String,
    },
    /// The VM was shut down.
    Shutdown {
        /// The VM.
        vm_id: String,
    },
    /// Its disk was captured.
    Capture {
        /// The VM.
        vm_id: String,
    },
    /// It was destroyed.
    Destroy {
        /// The VM.
        vm_id: String,
    },
    /// It was kept running for debugging.
    Keep {
        /// The VM.
        vm_id: String,
    },
}

#[derive(Debug, Default)]
pub(super) struct MockState {
    pub(super) rules: Rules,
    pub(super) calls: Vec<MockCall>,
    pub(super) failures: BTreeMap<MockOp, String>,
    pub(super) delays: BTreeMap<MockOp, Duration>,
    pub(super) live: BTreeSet<String>,
    pub(super) kept: BTreeSet<String>,
}

/// A build host that runs nothing and records everything. Clones share their state, so a
/// test keeps one clone to inspect and gives another to the engine.
#[derive(Debug, Clone)]
pub struct MockBuildHost {
    state: Arc<Mutex<MockState>>,
    capabilities: Capabilities,
    capture_size: Option<u64>,
}

impl Default for MockBuildHost {
    fn default() -> Self {
        Self::new()
    }
}

impl MockBuildHost {
    /// A host that can do everything and whose commands all succeed.
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            capabilities: Capabilities::all(),
            capture_size: None,
        }
    }

    /// The same host capturing disks of `virtual_size` bytes: the usual contents padded with
    /// zeros, a raw disk real targets can read (default: just the contents, reported as the
    /// base disk's size, at least 1 GiB).
    pub fn with_capture_size(mut self, virtual_size: u64) -> Self {
        self.capture_size = Some(virtual_size);
        self
    }

    /// The same host claiming only `capabilities`.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commands (and lines of uploaded scripts) containing `contains` answer `response`.
    pub fn on_exec(&self, contains: &str, response: MockResponse) {
        self.lock().rules.add(contains, response);
    }

    /// `op` fails with `message` from now on.
    pub fn fail(&self, op: MockOp, message: &str) {
        self.lock().failures.insert(op, message.to_owned());
    }

    /// `op` takes `delay` from now on.
    pub fn delay(&self, op: MockOp, delay: Duration) {
        self.lock().delays.insert(op, delay);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<MockCall> {
        self.lock().calls.clone()
    }

    /// The commands run so far, in order.
    pub fn commands(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                MockCall::Exec { command, .. } => Some(command),
                _ => None,
            })
            .collect()
    }

    /// VMs provisioned and neither destroyed nor kept: a leak when a run has ended.
    pub fn live_vms(&self) -> Vec<String> {
        self.lock().live.iter().cloned().collect()
    }

    /// VMs kept for debugging.
    pub fn kept_vms(&self) -> Vec<String> {
        self.lock().kept.iter().cloned().collect()
    }

    /// Waits for an injected delay, then fails if a failure was injected.
    pub(super) async fn enter(&self, op: MockOp, operation: &str) -> Result<(), String> {
        let (delay, failure) = {
            let state = self.lock();
            (
                state.delays.get(&op).copied(),
                state.failures.get(&op).cloned(),
            )
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match failure {
            Some(message) => Err(format!("{operation}: {message}")),
            None => Ok(()),
        }
    }

    pub(super) fn record(&self, call: MockCall) {
        self.lock().calls.push(call);
    }
}

#[async_trait]
impl BuildHost for MockBuildHost {
    fn name(&self) -> &str {
        "mock"
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    async fn provision(&self, options: ProvisionOptions) -> Result<Box<dyn BuildVm>, HostError> {
        let op = match options.purpose {
            VmPurpose::Build => MockOp::ProvisionBuild,
            VmPurpose::Validation => MockOp::ProvisionValidation,
        };
        self.enter(op, "provision")
            .await
            .map_err(|m| HostError::failed("provision a mock VM", m))?;
        self.record(MockCall::Provision {
            vm_id: options.vm_id.clone(),
            purpose: options.purpose,
            base_disk: options.base_disk.clone(),
        });
        self.lock().live.insert(options.vm_id.clone());
        Ok(Box::new(MockVm {
            guest: MockGuest::new(self.clone(), options.vm_id.clone()),
            host: self.clone(),
            id: options.vm_id,
            base_disk: options.base_disk,
            capture_size: self.capture_size,
        }))
    }
}

/// A VM of the mock host.
struct MockVm {
    id: String,
    host: MockBuildHost,
    guest: MockGuest,
    base_disk: BaseDisk,
    capture_size: Option<u64>,
}

#[async_trait]
impl BuildVm for MockVm {
    fn id(&self) -> &str {
        &self.id
    }

    fn guest(&self) -> &dyn Guest {
        &self.guest
    }

    fn access(&self) -> VmAccess {
        VmAccess {
            how: format!("mock VM {}", self.id),
            cleanup: "nothing to remove: the mock VM exists only in memory".into(),
        }
    }

    async fn shutdown(&mut self) -> Result<(), HostError> {
        self.host
            .enter(MockOp::Shutdown, "shutdown")
            .await
            .map_err(|m| HostError::failed("shut down", m))?;
        self.host.record(MockCall::Shutdown {
            vm_id: self.id.clone(),
        });
        Ok(())
    }

    /// Writes a small file standing for the disk: the base disk's location and every command
    /// run, so tests can tell captures apart.
    async fn capture(&mut self, destination: &Path) -> Result<CapturedDisk, HostError> {
        self.host
            .enter(MockOp::Capture, "capture")
            .await
            .map_err(|m| HostError::failed("capture the disk", m))?;
        self.host.record(MockCall::Capture {
            vm_id: self.id.clone(),
        });
        let mut contents = format!("mock disk from {}\n", self.base_disk.location);
        for command in self.host.commands() {
            contents.push_str(&command);
            contents.push('\n');
        }
        let write_failed = |e: std::io::Error| HostError::Failed {
            operation: "write the capture".into(),
            source: Box::new(e),
        };
        tokio::fs::write(destination, contents)
            .await
            .map_err(write_failed)?;
        if let Some(size) = self.capture_size {
            // A whole raw disk of that size, so real targets can read it.
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(destination)
                .await
                .map_err(write_failed)?;
            file.set_len(size).await.map_err(write_failed)?;
        }
        Ok(CapturedDisk {
            path: destination.to_path_buf(),
            format: self.base_disk.format,
            virtual_size: self
                .capture_size
                .unwrap_or_else(|| self.base_disk.virtual_size.max(1 << 30)),
        })
    }

    async fn destroy(self: Box<Self>) -> Result<(), HostError> {
        let result = self.host.enter(MockOp::Destroy, "destroy").await;
        // Even a failing destroy forgets the VM, or a test could not tell a retry from a leak.
        self.host.record(MockCall::Destroy {
            vm_id: self.id.clone(),
        });
        self.host.lock().live.remove(&self.id);
        result.map_err(|m| HostError::failed("destroy a mock VM", m))
    }

    fn keep(self: Box<Self>) -> VmAccess {
        let access = self.access();
        self.host.record(MockCall::Keep {
            vm_id: self.id.clone(),
        });
        let mut state = self.host.lock();
        state.live.remove(&self.id);
        state.kept.insert(self.id.clone());
        access
    }
}
