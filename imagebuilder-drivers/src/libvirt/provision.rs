//! One provision: local seed and sizes, volumes in the pool, the domain, the console, SSH.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imagebuilder_core::host::{BuildVm, HostError, ProvisionOptions};
use imagebuilder_core::template::model::{HyperVGeneration, OsType};
use virt::domain::Domain;

use super::conn::{blocking, failed, Conn};
use super::resources::{self, Lease, Resources, Role};
use super::vm::LibvirtVm;
use super::xml::{self, DomainSpec, Uefi};
use super::{console, storage, LibvirtBuildHost, LibvirtConfig, LibvirtNetwork};
use crate::ssh::{HostKey, SshGuest, SshTarget};
use crate::vmkit::accel::{self, Accelerator};
use crate::vmkit::console::ConsoleTail;
use crate::vmkit::disk::{capture_format, local_base, os_disk_size};
use crate::vmkit::inspect::inspect_base;
use crate::vmkit::sizes::shape_for;
use crate::vmkit::{free_port, seed};

/// Attempts at a free SSH port before giving up (another process may take each one).
const PORT_ATTEMPTS: usize = 5;

/// Where the volumes of a new VM ended up.
struct Volumes {
    disk: String,
    seed: String,
    nvram: Option<String>,
}

pub(super) async fn provision(
    host: &LibvirtBuildHost,
    options: ProvisionOptions,
) -> Result<Box<dyn BuildVm>, HostError> {
    let config = host.config.clone();
    let base = &options.base_disk;
    if base.os_type == OsType::Windows {
        return Err(HostError::Unsupported {
            operation: "Windows guests (no WinRM communicator)".into(),
            host: "libvirt".into(),
        });
    }
    resources::check_vm_id(&options.vm_id)?;
    let generation = base.hyper_v_generation;
    if generation == HyperVGeneration::V2 && !config.ovmf_vars.exists() {
        return Err(HostError::Unsupported {
            operation: format!(
                "Hyper-V generation V2 (UEFI) without {}",
                config.ovmf_vars.display()
            ),
            host: "libvirt".into(),
        });
    }

    // Local work first: nothing on the hypervisor yet.
    let dir = options.work_dir.clone();
    let base_path = local_base(&base.location, "libvirt")?;
    // Before it is uploaded and QEMU opens it (with its format named, never probed).
    let checked = inspect_base(&base_path, base.format).await?;
    let base_path = checked.path;
    let disk_size = os_disk_size(checked.virtual_size, options.vm_profile.os_disk_size_gb)?;
    let seed = seed::create(&dir, &options.vm_id, &config.build_user).await?;
    let host_key = HostKey::parse(&seed.host_public_key)
        .map_err(|e| HostError::failed("read the pinned host key", e.to_string()))?;

    let lazy = host.conn.clone();
    let uri = config.uri.clone();
    let conn = blocking("connect to libvirt", move || lazy.get(&uri)).await?;
    if let Err(e) = host.reconcile().await {
        tracing::warn!(
            "reconciling leftovers failed: {}",
            imagebuilder_core::error_chain(&e)
        );
    }
    let domain_type = domain_type(&config, &conn).await?;
    let node = {
        let conn = conn.clone();
        blocking("read the hypervisor's size", move || {
            conn.get()
                .get_node_info()
                .map_err(|e| failed("read the hypervisor's size", e))
        })
        .await?
    };
    let shape = shape_for(
        config.shape,
        &options.vm_profile,
        generation,
        node.cpus,
        u32::try_from(node.memory / 1024).unwrap_or(u32::MAX),
    )?;

    // From here on everything made is removed again on any path out, unless handed to the VM.
    let lease = Lease::acquire(&config.lease_dir, &options.vm_id, &config.uri)?;
    let owned = Resources::new(conn.clone(), &config.pool, &options.vm_id, lease);
    let created = {
        let (conn, config) = (conn.clone(), config.clone());
        let vm_id = options.vm_id.clone();
        let (base_path, seed_image) = (base_path.clone(), seed.image.clone());
        let base_format = base.format;
        let ops = owned.ops.clone();
        blocking("create the volumes", move || {
            ops.run("create the volumes", || {
                create_volumes(
                    &conn,
                    &config,
                    &vm_id,
                    (&base_path, base_format),
                    disk_size,
                    &seed_image,
                    generation,
                )
            })
        })
        .await
    };
    let volumes = match created {
        Ok(volumes) => volumes,
        Err(e) => {
            let _ = owned.remove().await;
            return Err(e);
        }
    };
    tracing::info!(
        "{}: {} vCPUs, {} MiB, domain type {domain_type}, on {}",
        options.vm_id,
        shape.cpus,
        shape.memory_mib,
        config.uri
    );

    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let ssh_port = match config.network {
            LibvirtNetwork::User => free_port()?,
            _ => 22,
        };
        let name = resources::domain_name(&options.vm_id);
        let spec = DomainSpec {
            name: &name,
            domain_type: &domain_type,
            generation,
            shape,
            pool: &config.pool,
            disk_volume: &volumes.disk,
            seed_volume: &volumes.seed,
            uefi: volumes.nvram.clone().map(|nvram| Uefi {
                code: config.ovmf_code.display().to_string(),
                nvram,
            }),
            network: &config.network,
            ssh_port,
        };
        let domain_xml = spec.to_xml();
        let tail = ConsoleTail::default();
        let started = {
            let (conn, sink, tail) = (conn.clone(), options.console.clone(), tail.clone());
            let (ops, uri) = (owned.ops.clone(), config.uri.clone());
            blocking("start the domain", move || {
                ops.run("start the domain", || {
                    start(&conn, &uri, &domain_xml, sink, tail)
                })
            })
            .await
        };
        match started {
            Ok(()) => {}
            Err(e) => {
                let text = imagebuilder_core::error_chain(&e);
                if text.contains("hostfwd") || text.contains("host forwarding") {
                    last_error = Some(format!("port {ssh_port} was taken: {text}"));
                    continue;
                }
                let _ = owned.remove().await;
                return Err(e);
            }
        }
        let deadline = Instant::now() + config.boot_timeout;
        let address = match &config.network {
            LibvirtNetwork::User => Ok("127.0.0.1".to_owned()),
            _ => guest_address(&conn, &name, deadline).await,
        };
        let connected = match address {
            Ok(address) => {
                let target = SshTarget {
                    host: address.clone(),
                    port: ssh_port,
                    user: config.build_user.clone(),
                    private_key: seed.client_key.clone(),
                    host_key: host_key.clone(),
                };
                let remaining = deadline.saturating_duration_since(Instant::now());
                tokio::select! {
                    guest = SshGuest::connect(target, remaining) => guest
                        .map(|g| (g, address))
                        .map_err(|e| imagebuilder_core::error_chain(&e)),
                    () = wait_until_stopped(&conn, &name) => Err("the domain stopped before SSH answered".to_owned()),
                }
            }
            Err(e) => Err(imagebuilder_core::error_chain(&e)),
        };
        return match connected {
            Ok((guest, address)) => {
                if address != "127.0.0.1" {
                    // The seed's known_hosts names the loopback address; add this one.
                    let line = format!("{address} {}\n", seed.host_public_key);
                    let _ = append(&seed.known_hosts, &line);
                }
                Ok(Box::new(LibvirtVm {
                    id: options.vm_id.clone(),
                    config: config.clone(),
                    resources: Some(owned),
                    guest,
                    dir,
                    seed,
                    address,
                    ssh_port,
                    tail,
                    capture_format: capture_format(base.format),
                    virtual_size: disk_size,
                }))
            }
            Err(message) => {
                let _ = owned.remove().await;
                Err(HostError::failed(
                    "boot the VM",
                    format!("{message}; last console lines:{}", tail.text()),
                ))
            }
        };
    }
    let _ = owned.remove().await;
    Err(HostError::failed(
        "boot the VM",
        last_error.unwrap_or_else(|| "no free port".into()),
    ))
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// The domain type to ask for (see [`LibvirtConfig::accelerator`]).
async fn domain_type(config: &LibvirtConfig, conn: &Arc<Conn>) -> Result<String, HostError> {
    let caps = {
        let conn = conn.clone();
        blocking("read the hypervisor's capabilities", move || {
            conn.get()
                .get_capabilities()
                .map_err(|e| failed("read the hypervisor's capabilities", e))
        })
        .await?
    };
    let offered = xml::domain_types(&caps);
    let has = |t: &str| offered.iter().any(|o| o == t);
    Ok(match config.accelerator {
        Accelerator::Kvm => "kvm".into(),
        Accelerator::Tcg => "qemu".into(),
        Accelerator::Auto => {
            let kvm_works = has("kvm")
                && (config.is_remote()
                    || accel::resolve(Accelerator::Auto, "qemu-system-x86_64").await
                        == Accelerator::Kvm);
            if kvm_works {
                "kvm".into()
            } else if has("qemu") {
                "qemu".into()
            } else if let Some(first) = offered.first() {
                first.clone()
            } else {
                return Err(HostError::failed(
                    "choose the domain type",
                    format!("{} offers no x86_64 guests", config.uri),
                ));
            }
        }
    })
}

/// Makes the base, overlay, seed and (Gen2) nvram volumes. Blocking.
fn create_volumes(
    conn: &Conn,
    config: &LibvirtConfig,
    vm_id: &str,
    (base_path, base_format): (&Path, imagebuilder_core::template::model::DiskFormat),
    disk_size: u64,
    seed_image: &Path,
    generation: HyperVGeneration,
) -> Result<Volumes, HostError> {
    let pool = storage::ensure_pool(conn.get(), &config.pool, &config.pool_path())?;
    let file_len = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| HostError::Failed {
                operation: format!("read the size of {}", path.display()),
                source: Box::new(e),
            })
    };
    // Uploaded files go into raw volumes of their exact length: the bytes are the image.
    let upload = |role: Role, source: &Path| -> Result<String, HostError> {
        let name = resources::volume_name(vm_id, role);
        let volume = storage::create(
            &pool,
            &name,
            &xml::volume(&name, file_len(source)?, "raw", None),
        )?;
        storage::upload(conn.get(), &volume, source)?;
        storage::path(&volume)
    };
    let base = upload(Role::Base, base_path)?;
    let disk = resources::volume_name(vm_id, Role::Disk);
    storage::create(
        &pool,
        &disk,
        &xml::volume(&disk, disk_size, "qcow2", Some((&base, base_format))),
    )?;
    let seed = resources::volume_name(vm_id, Role::Seed);
    upload(Role::Seed, seed_image)?;
    let nvram = match generation {
        HyperVGeneration::V1 => None,
        HyperVGeneration::V2 => Some(upload(Role::Nvram, &config.ovmf_vars)?),
    };
    Ok(Volumes { disk, seed, nvram })
}

/// Starts the domain paused, attaches the console, then lets it run, so the console log
/// has the whole boot. Blocking.
fn start(
    conn: &Arc<Conn>,
    uri: &str,
    domain_xml: &str,
    sink: Arc<dyn imagebuilder_core::host::OutputSink>,
    tail: ConsoleTail,
) -> Result<(), HostError> {
    let domain = Domain::create_xml(conn.get(), domain_xml, virt::sys::VIR_DOMAIN_START_PAUSED)
        .map_err(|e| failed("start the domain", e))?;
    let name = domain
        .get_name()
        .map_err(|e| failed("read the domain's name", e))?;
    console::follow(uri, &name, sink, tail);
    domain
        .resume()
        .map_err(|e| failed("resume the domain", e))?;
    Ok(())
}

/// Whether the domain `name` is still running (a transient domain vanishes when it stops).
pub(super) async fn is_running(conn: &Arc<Conn>, name: &str) -> bool {
    let (conn, name) = (conn.clone(), name.to_owned());
    blocking("read the domain's state", move || {
        Ok(Domain::lookup_by_name(conn.get(), &name)
            .and_then(|d| d.is_active())
            .unwrap_or(false))
    })
    .await
    .unwrap_or(false)
}

/// Returns once the domain is no longer running.
async fn wait_until_stopped(conn: &Arc<Conn>, name: &str) {
    while is_running(conn, name).await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The guest's IPv4 address on a libvirt network (DHCP lease) or a bridge (ARP).
async fn guest_address(
    conn: &Arc<Conn>,
    name: &str,
    deadline: Instant,
) -> Result<String, HostError> {
    loop {
        let (c, n) = (conn.clone(), name.to_owned());
        let found = blocking("find the guest's address", move || {
            let domain =
                Domain::lookup_by_name(c.get(), &n).map_err(|e| failed("find the domain", e))?;
            for source in [
                virt::sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
                virt::sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
            ] {
                if let Ok(interfaces) = domain.interface_addresses(source, 0) {
                    let v4 = interfaces
                        .iter()
                        .flat_map(|i| i.addrs.iter())
                        .find(|a| a.typed == i64::from(virt::sys::VIR_IP_ADDR_TYPE_IPV4));
                    if let Some(address) = v4 {
                        return Ok(Some(address.addr.clone()));
                    }
                }
            }
            Ok(None)
        })
        .await?;
        if let Some(address) = found {
            return Ok(address);
        }
        if Instant::now() >= deadline || !is_running(conn, name).await {
            return Err(HostError::failed(
                "find the guest's address",
                "the guest got no IPv4 address (no DHCP lease, no ARP entry)",
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
