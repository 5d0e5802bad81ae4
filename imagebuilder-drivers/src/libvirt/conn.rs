//! One libvirt connection per host, opened on first use, and the rule that every call into
//! libvirt runs on a blocking thread, never on an async worker.

use std::sync::{Arc, Mutex, PoisonError};

use imagebuilder_core::host::HostError;
use virt::connect::Connect;
use virt::error::ErrorNumber;

/// An open connection; closed when the last user drops it.
#[derive(Debug)]
pub(crate) struct Conn {
    connect: Connect,
}

impl Conn {
    pub(crate) fn get(&self) -> &Connect {
        &self.connect
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // `Connect` has no Drop of its own: without this the connection stays open.
        let _ = self.connect.close();
    }
}

/// The connection of one host, opened lazily (opening may reach a remote machine over SSH).
#[derive(Debug, Default)]
pub(crate) struct LazyConn {
    open: Mutex<Option<Arc<Conn>>>,
}

impl LazyConn {
    /// The open connection to `uri`; opens it on first use. Blocking: call from
    /// [`blocking`] only.
    pub(crate) fn get(&self, uri: &str) -> Result<Arc<Conn>, HostError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = open.as_ref() {
            if conn.get().is_alive().unwrap_or(false) {
                return Ok(conn.clone());
            }
        }
        let conn = Arc::new(Conn::open(uri)?);
        *open = Some(conn.clone());
        Ok(conn)
    }
}

impl Conn {
    /// A connection of its own to `uri`. Blocking.
    pub(crate) fn open(uri: &str) -> Result<Self, HostError> {
        // libvirt's default handler prints every error on stderr; ours are returned instead.
        virt::error::clear_error_callback();
        let connect =
            Connect::open(Some(uri)).map_err(|e| failed(&format!("connect to {uri}"), e))?;
        Ok(Self { connect })
    }
}

/// Runs blocking libvirt calls on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(operation: &str, f: F) -> Result<T, HostError>
where
    F: FnOnce() -> Result<T, HostError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::failed(operation, format!("the libvirt call panicked: {e}")))?
}

/// A libvirt error as a host error saying what was being done.
pub(crate) fn failed(operation: &str, error: virt::error::Error) -> HostError {
    HostError::Failed {
        operation: operation.to_owned(),
        source: Box::new(error),
    }
}

/// True when libvirt says the object is already gone.
pub(crate) fn is_gone(error: &virt::error::Error) -> bool {
    matches!(
        error.code(),
        ErrorNumber::NoDomain | ErrorNumber::NoStorageVolume | ErrorNumber::OperationInvalid
    )
}

/// True when the driver does not implement the call (e.g. volume upload on `test:///`).
pub(crate) fn is_unsupported(error: &virt::error::Error) -> bool {
    matches!(error.code(), ErrorNumber::NoSupport)
}
