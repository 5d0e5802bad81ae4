//! The host's libvirt side on libvirt's built-in `test:///default` driver (no daemon): the
//! pool made on demand, volumes over a backing volume, the domain XML accepted by libvirt's
//! parser for every generation and network, removal on drop, and reconciliation. The driver
//! cannot upload or download volumes and runs no guest; a whole provision there fails with
//! `Unsupported` having left nothing (checked below), and the guest side is tested on a real
//! daemon in `tests/libvirt_host.rs`.

use std::sync::Arc;
use std::time::Duration;

use imagebuilder_core::host::{BuildHost, HostError, OutputLine, ProvisionOptions, VmPurpose};
use imagebuilder_core::source::BaseDisk;
use imagebuilder_core::template::model::{
    DiskFormat, HyperVGeneration, OsType, SecurityType, VmProfile,
};
use virt::domain::Domain;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::conn::{Conn, LazyConn};
use super::resources::{self, Lease, Resources, Role};
use super::xml::{self, DomainSpec, Uefi};
use super::*;
use crate::vmkit::sizes::VmShape;

const URI: &str = "test:///default";
const POOL: &str = "default-pool";

fn conn() -> Arc<Conn> {
    LazyConn::default().get(URI).expect("test:///default opens")
}

fn host(leases: &std::path::Path) -> LibvirtBuildHost {
    LibvirtBuildHost::new(
        LibvirtConfig::default()
            .with_uri(URI)
            .with_pool(POOL, None)
            .with_lease_dir(leases),
    )
}

/// Names of our domains and volumes that belong to `vm_id`.
fn leftovers(conn: &Conn, vm_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for domain in conn.get().list_all_domains(0).unwrap() {
        let name = domain.get_name().unwrap();
        if resources::vm_of_domain(&name) == Some(vm_id) {
            found.push(name);
        }
    }
    let pool = StoragePool::lookup_by_name(conn.get(), POOL).unwrap();
    for name in pool.list_volumes().unwrap() {
        if resources::vm_of_volume(&name) == Some(vm_id) {
            found.push(name);
        }
    }
    found
}

/// Makes the volumes and a running domain of `vm_id`, as a provision would.
fn make_vm(conn: &Conn, vm_id: &str) {
    let pool = StoragePool::lookup_by_name(conn.get(), POOL).unwrap();
    let base = resources::volume_name(vm_id, Role::Base);
    let base_vol =
        storage::create(&pool, &base, &xml::volume(&base, 1 << 20, "raw", None)).unwrap();
    let base_path = storage::path(&base_vol).unwrap();
    let disk = resources::volume_name(vm_id, Role::Disk);
    storage::create(
        &pool,
        &disk,
        &xml::volume(
            &disk,
            2 << 20,
            "qcow2",
            Some((&base_path, DiskFormat::Qcow2)),
        ),
    )
    .unwrap();
    let seed = resources::volume_name(vm_id, Role::Seed);
    storage::create(&pool, &seed, &xml::volume(&seed, 1 << 20, "raw", None)).unwrap();
    let network = LibvirtNetwork::User;
    let name = resources::domain_name(vm_id);
    let spec = DomainSpec {
        name: &name,
        domain_type: "test",
        generation: HyperVGeneration::V1,
        shape: VmShape {
            cpus: 1,
            memory_mib: 512,
        },
        pool: POOL,
        disk_volume: &disk,
        seed_volume: &seed,
        uefi: None,
        network: &network,
        ssh_port: 2222,
    };
    Domain::create_xml(conn.get(), &spec.to_xml(), 0).expect("the domain XML is accepted");
}

#[test]
fn every_domain_xml_is_accepted_and_the_domain_goes_with_destroy() {
    let conn = conn();
    let networks = [
        LibvirtNetwork::User,
        LibvirtNetwork::Network("default".into()),
        LibvirtNetwork::Bridge("br0".into()),
    ];
    for (i, network) in networks.iter().enumerate() {
        for generation in [HyperVGeneration::V1, HyperVGeneration::V2] {
            let name = format!("imagebuilder-xml-{i}-{generation:?}");
            let spec = DomainSpec {
                name: &name,
                domain_type: "test",
                generation,
                shape: VmShape {
                    cpus: 2,
                    memory_mib: 1024,
                },
                pool: POOL,
                disk_volume: "disk",
                seed_volume: "seed",
                uefi: (generation == HyperVGeneration::V2).then(|| Uefi {
                    code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
                    nvram: "/default-pool/nvram".into(),
                }),
                network,
                ssh_port: 2222,
            };
            let domain = Domain::create_xml(conn.get(), &spec.to_xml(), 0)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", spec.to_xml()));
            let info = domain.get_info().unwrap();
            assert_eq!((info.nr_virt_cpu, info.max_mem), (2, 1024 * 1024), "{name}");
            let described = domain.get_xml_desc(0).unwrap();
            assert!(described.contains("<acpi/>"), "{described}");
            domain.destroy().unwrap();
            assert!(
                Domain::lookup_by_name(conn.get(), &name).is_err(),
                "{name} is transient"
            );
        }
    }
}

#[test]
fn a_missing_pool_is_made_on_demand_and_reused() {
    let conn = conn();
    let name = format!("imagebuilder-pool-{}", std::process::id());
    let pool = storage::ensure_pool(conn.get(), &name, "/tmp/ib-pool-on-demand").unwrap();
    assert!(pool.is_active().unwrap() && pool.is_persistent().unwrap());
    let again = storage::ensure_pool(conn.get(), &name, "/elsewhere").unwrap();
    assert!(again
        .get_xml_desc(0)
        .unwrap()
        .contains("/tmp/ib-pool-on-demand"));
    pool.destroy().unwrap();
    // An inactive pool is started again.
    storage::ensure_pool(conn.get(), &name, "/tmp/ib-pool-on-demand").unwrap();
    pool.destroy().unwrap();
    pool.undefine().unwrap();
}

#[test]
fn capture_volumes_are_cloned_from_the_disk_and_deleted() {
    let conn = conn();
    make_vm(&conn, "clone-check");
    let pool = StoragePool::lookup_by_name(conn.get(), POOL).unwrap();
    let disk =
        StorageVol::lookup_by_name(&pool, &resources::volume_name("clone-check", Role::Disk))
            .unwrap();
    let name = resources::volume_name("clone-check", Role::Capture);
    storage::clone_from(
        &pool,
        &name,
        &xml::volume(&name, 2 << 20, "qcow2", None),
        &disk,
    )
    .unwrap();
    // The test driver cannot stream a volume out; it says so as Unsupported.
    let target = tempfile::tempdir().unwrap();
    let capture = StorageVol::lookup_by_name(&pool, &name).unwrap();
    match storage::download(conn.get(), &capture, &target.path().join("c.qcow2")) {
        Err(HostError::Unsupported { .. }) => {}
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let removed = resources::remove_vm(&conn, POOL, "clone-check").unwrap();
    assert!(removed.domain, "{removed:?}");
    assert_eq!(removed.volumes.len(), 4, "{removed:?}");
    assert_eq!(leftovers(&conn, "clone-check"), Vec::<String>::new());
    // Removing again finds nothing and is not an error.
    assert_eq!(
        resources::remove_vm(&conn, POOL, "clone-check").unwrap(),
        Default::default()
    );
}

#[test]
fn dropped_resources_are_removed_in_the_background() {
    let conn = conn();
    let leases = tempfile::tempdir().unwrap();
    make_vm(&conn, "drop-check");
    let lease = Lease::acquire(leases.path(), "drop-check", URI).unwrap();
    drop(Resources::new(conn.clone(), POOL, "drop-check", lease));
    for _ in 0..100 {
        if leftovers(&conn, "drop-check").is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers(&conn, "drop-check"), Vec::<String>::new());
    for _ in 0..100 {
        if !resources::lease_path(leases.path(), "drop-check").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!resources::lease_path(leases.path(), "drop-check").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_removes_only_leftovers_of_ended_processes() {
    let conn = conn();
    let leases = tempfile::tempdir().unwrap();
    for id in ["rc-crashed", "rc-live", "rc-foreign"] {
        make_vm(&conn, id);
    }
    // A process that died: its lease file is there, unlocked.
    drop(Lease::acquire(leases.path(), "rc-crashed", URI).unwrap());
    let live = Lease::acquire(leases.path(), "rc-live", URI).unwrap();
    let host = host(leases.path());
    let output = host.reconcile().await.unwrap();
    assert!(
        output.removed.contains(&"rc-crashed".to_owned()),
        "{output:?}"
    );
    assert!(output.in_use.contains(&"rc-live".to_owned()), "{output:?}");
    assert!(
        output.foreign.contains(&"rc-foreign".to_owned()),
        "{output:?}"
    );
    assert_eq!(leftovers(&conn, "rc-crashed"), Vec::<String>::new());
    assert!(!resources::lease_path(leases.path(), "rc-crashed").exists());
    assert_eq!(leftovers(&conn, "rc-live").len(), 4);
    assert_eq!(leftovers(&conn, "rc-foreign").len(), 4);
    drop(live);
    for id in ["rc-live", "rc-foreign"] {
        resources::remove_vm(&conn, POOL, id).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provision_on_the_test_driver_fails_unsupported_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("base.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("16M")
        .status()
        .expect("qemu-img runs");
    assert!(made.success());
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let leases = dir.path().join("leases");
    let host = host(&leases);
    let vm_id = format!("unsupported-{}", std::process::id());
    let options = ProvisionOptions {
        vm_id: vm_id.clone(),
        purpose: VmPurpose::Build,
        base_disk: BaseDisk {
            location: image.display().to_string(),
            format: DiskFormat::Qcow2,
            virtual_size: 0,
            sha256: None,
            os_type: OsType::Linux,
            hyper_v_generation: HyperVGeneration::V1,
            security_type: SecurityType::Standard,
            exact_version: None,
        },
        vm_profile: VmProfile::default(),
        work_dir: work,
        console: Arc::new(|_: OutputLine<'_>| {}),
    };
    match host.provision(options).await {
        Err(HostError::Unsupported { operation, .. }) => {
            assert!(operation.contains("volume upload"), "{operation}")
        }
        Err(e) => panic!(
            "expected Unsupported, got {}",
            imagebuilder_core::error_chain(&e)
        ),
        Ok(_) => panic!("the test driver runs no guest"),
    }
    assert_eq!(leftovers(&conn(), &vm_id), Vec::<String>::new());
    assert!(!resources::lease_path(&leases, &vm_id).exists());
}

#[test]
fn capabilities_and_remote_uris() {
    let host = host(std::path::Path::new("/nonexistent"));
    let caps = host.capabilities();
    assert!(caps.bios && caps.restart && caps.keep_on_failure);
    assert!(!caps.windows);
    let remote = LibvirtConfig::default().with_uri("qemu+ssh://builder@hv1/system");
    assert!(remote.is_remote());
    assert!(!LibvirtConfig::default().is_remote());
    assert!(!LibvirtConfig::default().with_uri(URI).is_remote());
    assert_eq!(
        LibvirtConfig::default().pool_path(),
        "/var/lib/libvirt/images/imagebuilder"
    );
}
