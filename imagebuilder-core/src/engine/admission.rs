//! Admission control: how many runs may have a VM at once, and how much memory their VMs
//! may take together. A run waits in `Running/Queued` until it is admitted.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits on the VMs an [`Engine`](super::Engine) runs at once (none by default).
///
/// A run holds its place from leaving `Queued` until its cleanup is done; it has at most one
/// VM at a time (the build VM, then the validation VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineLimits {
    /// Runs with a VM at once.
    pub max_concurrent_vms: Option<usize>,
    /// Memory in MiB all running VMs may take together, as the host reports a VM's size
    /// ([`BuildHost::vm_memory_mib`](crate::host::BuildHost::vm_memory_mib)).
    pub memory_budget_mib: Option<u64>,
}

/// What a VM is assumed to take when its host cannot say.
pub const ASSUMED_VM_MEMORY_MIB: u64 = 1024;

/// The engine's shared counters.
#[derive(Debug)]
pub(super) struct Admission {
    vms: Option<Arc<Semaphore>>,
    memory: Option<(Arc<Semaphore>, u64)>,
}

/// A run's place; released on drop.
#[derive(Debug)]
pub(super) struct Admitted {
    _vm: Option<OwnedSemaphorePermit>,
    _memory: Option<OwnedSemaphorePermit>,
}

/// Permits are `u32`; budgets are counted in MiB, which is plenty.
fn permits(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Admission {
    pub(super) fn new(limits: EngineLimits) -> Self {
        Self {
            vms: limits
                .max_concurrent_vms
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
            memory: limits.memory_budget_mib.map(|budget| {
                let budget = budget.clamp(1, u64::from(permits(u64::MAX)) / 2);
                (Arc::new(Semaphore::new(budget as usize)), budget)
            }),
        }
    }

    /// Whether a run asking for `memory_mib` would have to wait now.
    pub(super) fn would_wait(&self, memory_mib: u64) -> bool {
        let no_vm = self
            .vms
            .as_ref()
            .is_some_and(|s| s.available_permits() == 0);
        let no_memory = self
            .memory
            .as_ref()
            .is_some_and(|(s, budget)| (s.available_permits() as u64) < memory_mib.min(*budget));
        no_vm || no_memory
    }

    /// Waits for a place for a run whose VMs take `memory_mib` (a VM larger than the whole
    /// budget waits for the whole budget). The VM slot is taken first, so runs queue in
    /// order for memory.
    pub(super) async fn admit(&self, memory_mib: u64) -> Admitted {
        let vm = match &self.vms {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        let memory = match &self.memory {
            Some((s, budget)) => s
                .clone()
                .acquire_many_owned(permits(memory_mib.clamp(1, *budget)))
                .await
                .ok(),
            None => None,
        };
        Admitted {
            _vm: vm,
            _memory: memory,
        }
    }
}
