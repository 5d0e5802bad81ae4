//! What one VM owns on the hypervisor, by name: the domain `imagebuilder-<vm id>` and the
//! volumes `imagebuilder-<vm id>-<role>`. A local lease file, locked for as long as this
//! process owns the VM, tells a later run whether leftovers belong to a live build or to one
//! that crashed.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use imagebuilder_core::host::HostError;
use virt::domain::Domain;
use virt::storage_pool::StoragePool;

use super::conn::{failed, is_gone, Conn};
use super::storage;
use crate::vmkit::lease_file;

/// What every name starts with.
pub(crate) const PREFIX: &str = "imagebuilder-";

/// The volumes of one VM, deleted in this order (overlays before what they are over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Capture,
    Disk,
    Nvram,
    Seed,
    Base,
}

impl Role {
    pub(crate) const ALL: [Role; 5] = [
        Role::Capture,
        Role::Disk,
        Role::Nvram,
        Role::Seed,
        Role::Base,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Role::Capture => "-capture",
            Role::Disk => "-disk",
            Role::Nvram => "-nvram",
            Role::Seed => "-seed",
            Role::Base => "-base",
        }
    }
}

/// The domain's name.
pub(crate) fn domain_name(vm_id: &str) -> String {
    format!("{PREFIX}{vm_id}")
}

/// A volume's name.
pub(crate) fn volume_name(vm_id: &str, role: Role) -> String {
    format!("{PREFIX}{vm_id}{}", role.suffix())
}

/// The VM id a domain name stands for, if it is one of ours.
pub(crate) fn vm_of_domain(name: &str) -> Option<&str> {
    name.strip_prefix(PREFIX).filter(|id| !id.is_empty())
}

/// The VM id a volume name stands for, if it is one of ours.
pub(crate) fn vm_of_volume(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?;
    Role::ALL
        .iter()
        .find_map(|role| rest.strip_suffix(role.suffix()))
        .filter(|id| !id.is_empty())
}

/// VM ids become names and file names: keep them to a safe alphabet.
pub(crate) fn check_vm_id(vm_id: &str) -> Result<(), HostError> {
    let ok = !vm_id.is_empty()
        && vm_id.len() <= 100
        && vm_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !vm_id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(HostError::failed(
            "name the VM",
            format!("vm id '{vm_id}' must be 1-100 letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// The lock file of a VM this process owns.
#[derive(Debug)]
pub(crate) struct Lease {
    path: PathBuf,
    // Holding the open file holds the lock; the OS drops it if the process dies.
    _file: File,
}

/// What a lease file says about its VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseState {
    /// No lease here: another machine's or a kept VM.
    Absent,
    /// Locked by a live process.
    Held,
    /// The file is there but nobody holds it: its process ended without cleaning up.
    Stale,
}

pub(crate) fn lease_path(dir: &Path, vm_id: &str) -> PathBuf {
    dir.join(format!("{vm_id}.lease"))
}

impl Lease {
    /// Takes the lease of `vm_id`, failing if a live process holds it.
    pub(crate) fn acquire(dir: &Path, vm_id: &str, uri: &str) -> Result<Self, HostError> {
        let path = lease_path(dir, vm_id);
        let mut file = lease_file::lock(&path, vm_id)?;
        let io = |e: std::io::Error| HostError::Failed {
            operation: format!("take the lease {}", path.display()),
            source: Box::new(e),
        };
        file.set_len(0).map_err(io)?;
        writeln!(file, "uri {uri}\npid {}", std::process::id()).map_err(io)?;
        Ok(Self { path, _file: file })
    }

    /// Whether the lease of `vm_id` is held, stale or absent.
    pub(crate) fn state(dir: &Path, vm_id: &str) -> LeaseState {
        let Ok(file) = File::open(lease_path(dir, vm_id)) else {
            return LeaseState::Absent;
        };
        match file.try_lock_shared() {
            Ok(()) => LeaseState::Stale,
            Err(_) => LeaseState::Held,
        }
    }

    /// Removes the file; the lock goes with the handle.
    pub(crate) fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What [`remove_vm`] found and removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Removed {
    pub(crate) domain: bool,
    pub(crate) volumes: Vec<String>,
}

/// Destroys the VM's domain (a transient domain is gone once destroyed) and deletes its
/// volumes. Anything already gone is skipped. Blocking.
pub(crate) fn remove_vm(conn: &Conn, pool: &str, vm_id: &str) -> Result<Removed, HostError> {
    let mut removed = Removed::default();
    let name = domain_name(vm_id);
    match Domain::lookup_by_name(conn.get(), &name) {
        Ok(domain) => {
            match domain.destroy() {
                Ok(()) => removed.domain = true,
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(failed(&format!("destroy the domain {name}"), e)),
            }
            // A domain made persistent by someone else would survive destroy.
            if domain.is_persistent().unwrap_or(false) {
                let _ = domain.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_NVRAM);
            }
        }
        Err(e) if is_gone(&e) => {}
        Err(e) => return Err(failed(&format!("find the domain {name}"), e)),
    }
    let pool = match StoragePool::lookup_by_name(conn.get(), pool) {
        Ok(pool) => pool,
        Err(e) if e.code() == virt::error::ErrorNumber::NoStoragePool => return Ok(removed),
        Err(e) => return Err(failed(&format!("find the storage pool '{pool}'"), e)),
    };
    for role in Role::ALL {
        let volume = volume_name(vm_id, role);
        if storage::delete(&pool, &volume)? {
            removed.volumes.push(volume);
        }
    }
    Ok(removed)
}

/// Serializes the blocking calls that make a VM's resources with their removal: a call
/// still running when its future is dropped finishes before the removal starts, and one
/// that had not started yet does not start at all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ops {
    lock: Arc<Mutex<()>>,
    removing: Arc<AtomicBool>,
}

impl Ops {
    /// Runs `f` unless the removal has begun. Blocking.
    pub(crate) fn run<T>(
        &self,
        operation: &str,
        f: impl FnOnce() -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.removing.load(Ordering::SeqCst) {
            return Err(HostError::failed(operation, "the VM is being removed"));
        }
        f()
    }

    fn begin_removal(&self) -> std::sync::MutexGuard<'_, ()> {
        self.removing.store(true, Ordering::SeqCst);
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The VM's resources for as long as this process owns them: removed when dropped unless
/// removed already or kept, so every path (error, cancel, panic) cleans up.
#[derive(Debug)]
pub(crate) struct Resources {
    pub(crate) conn: Arc<Conn>,
    pub(crate) pool: String,
    pub(crate) vm_id: String,
    pub(crate) ops: Ops,
    lease: Option<Lease>,
}

impl Resources {
    pub(crate) fn new(conn: Arc<Conn>, pool: &str, vm_id: &str, lease: Lease) -> Self {
        Self {
            conn,
            pool: pool.to_owned(),
            vm_id: vm_id.to_owned(),
            ops: Ops::default(),
            lease: Some(lease),
        }
    }

    /// Removes everything now (on a blocking thread) and releases the lease.
    pub(crate) async fn remove(mut self) -> Result<(), HostError> {
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        let (conn, pool, vm_id) = (self.conn.clone(), self.pool.clone(), self.vm_id.clone());
        let ops = self.ops.clone();
        let result = super::conn::blocking("remove the VM", move || {
            let _removing = ops.begin_removal();
            remove_vm(&conn, &pool, &vm_id)
        })
        .await;
        match result {
            Ok(_) => {
                lease.release();
                Ok(())
            }
            // The lease file stays, unlocked: the next reconcile retries.
            Err(e) => Err(e),
        }
    }

    /// Leaves everything in place for a person; the lease goes, so no reconcile removes it.
    pub(crate) fn keep(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        // Dropped without remove(): a canceled provision, an error path, a panic. libvirt
        // calls block, so they run on their own thread; the lease is held until they end.
        let (conn, pool, vm_id) = (self.conn.clone(), self.pool.clone(), self.vm_id.clone());
        let ops = self.ops.clone();
        // Set now, so a blocking call queued but not yet started does not start.
        ops.removing.store(true, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name(format!("libvirt-cleanup-{vm_id}"))
            .spawn(move || {
                let _removing = ops.begin_removal();
                match remove_vm(&conn, &pool, &vm_id) {
                    Ok(_) => lease.release(),
                    Err(e) => tracing::warn!(
                        "{vm_id}: cleanup failed, the next reconcile retries: {}",
                        imagebuilder_core::error_chain(&e)
                    ),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the cleanup of a libvirt VM: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(domain_name("r1-build"), "imagebuilder-r1-build");
        for role in Role::ALL {
            let name = volume_name("r1-build", role);
            assert_eq!(vm_of_volume(&name), Some("r1-build"), "{name}");
        }
        assert_eq!(vm_of_domain("imagebuilder-r1-build"), Some("r1-build"));
        assert_eq!(vm_of_volume("imagebuilder-"), None);
        assert_eq!(vm_of_volume("other-r1-disk"), None);
        assert_eq!(vm_of_volume("imagebuilder-r1-other"), None);
        assert!(check_vm_id("20261126-abc_1.build").is_ok());
        assert!(check_vm_id("a/b").is_err() && check_vm_id("").is_err());
    }

    #[test]
    fn leases_are_held_stale_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Lease::state(dir.path(), "vm"), LeaseState::Absent);
        let lease = Lease::acquire(dir.path(), "vm", "test:///default").unwrap();
        assert_eq!(Lease::state(dir.path(), "vm"), LeaseState::Held);
        assert!(Lease::acquire(dir.path(), "vm", "test:///default").is_err());
        drop(lease);
        assert_eq!(Lease::state(dir.path(), "vm"), LeaseState::Stale);
        Lease::acquire(dir.path(), "vm", "test:///default")
            .unwrap()
            .release();
        assert_eq!(Lease::state(dir.path(), "vm"), LeaseState::Absent);
    }
}
