//! The storage pool and the volumes of one VM: made on demand, filled and read through
//! libvirt streams (so a remote hypervisor works the same as a local one). Every function
//! here blocks: call from [`super::conn::blocking`] only.

use std::io::{Read, Write};
use std::path::Path;

use imagebuilder_core::host::HostError;
use virt::connect::Connect;
use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use super::conn::{failed, is_gone, is_unsupported};
use super::xml;

/// Bytes per stream call.
const CHUNK: usize = 1 << 20;

/// The pool named `name`, started if it is inactive; created as a directory pool at `path`
/// (and marked autostart) when it does not exist.
pub(crate) fn ensure_pool(
    conn: &Connect,
    name: &str,
    path: &str,
) -> Result<StoragePool, HostError> {
    let pool = match StoragePool::lookup_by_name(conn, name) {
        Ok(pool) => pool,
        Err(e) if e.code() == ErrorNumber::NoStoragePool => {
            let define = format!("create the storage pool '{name}' at {path}");
            match StoragePool::define_xml(conn, &xml::dir_pool(name, path), 0) {
                Ok(pool) => {
                    pool.build(0).map_err(|e| failed(&define, e))?;
                    let _ = pool.set_autostart(true);
                    pool
                }
                // Another build defined it meanwhile.
                Err(e) => {
                    StoragePool::lookup_by_name(conn, name).map_err(|_| failed(&define, e))?
                }
            }
        }
        Err(e) => return Err(failed(&format!("find the storage pool '{name}'"), e)),
    };
    if !pool
        .is_active()
        .map_err(|e| failed("read the storage pool's state", e))?
    {
        if let Err(e) = pool.create(0) {
            // Another build may have started it meanwhile.
            if !pool.is_active().unwrap_or(false) {
                return Err(failed(&format!("start the storage pool '{name}'"), e));
            }
        }
    }
    Ok(pool)
}

/// Creates a volume from `xml`.
pub(crate) fn create(pool: &StoragePool, name: &str, xml: &str) -> Result<StorageVol, HostError> {
    StorageVol::create_xml(pool, xml, 0)
        .map_err(|e| failed(&format!("create the volume {name}"), e))
}

/// Creates volume `xml` as a copy of `from` (libvirt converts, flattening any backing chain).
pub(crate) fn clone_from(
    pool: &StoragePool,
    name: &str,
    xml: &str,
    from: &StorageVol,
) -> Result<StorageVol, HostError> {
    StorageVol::create_xml_from(pool, xml, from, 0)
        .map_err(|e| failed(&format!("copy the disk into the volume {name}"), e))
}

/// The volume's path on the hypervisor host.
pub(crate) fn path(volume: &StorageVol) -> Result<String, HostError> {
    volume
        .get_path()
        .map_err(|e| failed("read the volume's path", e))
}

/// Writes the local file `source` into `volume` from its start.
pub(crate) fn upload(conn: &Connect, volume: &StorageVol, source: &Path) -> Result<(), HostError> {
    let operation = format!("upload {} into a volume", source.display());
    let io = |e: std::io::Error| HostError::Failed {
        operation: operation.clone(),
        source: Box::new(e),
    };
    let mut file = std::fs::File::open(source).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    let stream = Stream::new(conn, 0).map_err(|e| failed(&operation, e))?;
    if let Err(e) = volume.upload(&stream, 0, length, 0) {
        if is_unsupported(&e) {
            return Err(HostError::Unsupported {
                operation: "volume upload (the libvirt host copies disks through streams)".into(),
                host: format!("this libvirt driver ({})", e.message()),
            });
        }
        return Err(failed(&operation, e));
    }
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = stream.abort();
                return Err(io(e));
            }
        };
        let mut sent = 0;
        while sent < read {
            match stream.send(&buffer[sent..read]) {
                Ok(n) => sent += n,
                Err(e) => {
                    let _ = stream.abort();
                    return Err(failed(&operation, e));
                }
            }
        }
    }
    stream.finish().map_err(|e| failed(&operation, e))
}

/// Reads the whole of `volume` into the local file `destination` (created or truncated),
/// synced before returning.
pub(crate) fn download(
    conn: &Connect,
    volume: &StorageVol,
    destination: &Path,
) -> Result<u64, HostError> {
    let operation = format!("download the disk to {}", destination.display());
    let io = |e: std::io::Error| HostError::Failed {
        operation: operation.clone(),
        source: Box::new(e),
    };
    let stream = Stream::new(conn, 0).map_err(|e| failed(&operation, e))?;
    if let Err(e) = volume.download(&stream, 0, 0, 0) {
        if is_unsupported(&e) {
            return Err(HostError::Unsupported {
                operation: "volume download (the libvirt host captures disks through streams)"
                    .into(),
                host: format!("this libvirt driver ({})", e.message()),
            });
        }
        return Err(failed(&operation, e));
    }
    let mut file = std::fs::File::create(destination).map_err(io)?;
    let mut buffer = vec![0; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match stream.recv(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = stream.abort();
                return Err(failed(&operation, e));
            }
        };
        if let Err(e) = file.write_all(&buffer[..n]) {
            let _ = stream.abort();
            return Err(io(e));
        }
        total += n as u64;
    }
    stream.finish().map_err(|e| failed(&operation, e))?;
    file.sync_all().map_err(io)?;
    Ok(total)
}

/// Deletes volume `name` from `pool`; a volume that is not there is not an error. Returns
/// whether one was deleted.
pub(crate) fn delete(pool: &StoragePool, name: &str) -> Result<bool, HostError> {
    match StorageVol::lookup_by_name(pool, name) {
        Ok(volume) => match volume.delete(0) {
            Ok(()) => Ok(true),
            Err(e) if is_gone(&e) => Ok(false),
            Err(e) => Err(failed(&format!("delete the volume {name}"), e)),
        },
        Err(e) if is_gone(&e) => Ok(false),
        Err(e) => Err(failed(&format!("find the volume {name}"), e)),
    }
}

/// Names of the pool's volumes (after a refresh, so files other clients made are seen).
pub(crate) fn volume_names(pool: &StoragePool) -> Result<Vec<String>, HostError> {
    let _ = pool.refresh(0);
    let volumes = pool
        .list_all_volumes(0)
        .map_err(|e| failed("list the pool's volumes", e))?;
    volumes
        .iter()
        .map(|v| v.get_name().map_err(|e| failed("read a volume's name", e)))
        .collect()
}
