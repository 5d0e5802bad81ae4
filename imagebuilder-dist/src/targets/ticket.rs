//! A distributor's place in its run's shared read of the capture.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use crate::publish::{SharedCapture, Ticket};

/// The ticket a factory gave a distributor, or none for a distributor made on its own,
/// which then reads the capture by itself.
#[derive(Debug, Default)]
pub(crate) struct TicketSlot(Mutex<Option<Ticket>>);

impl TicketSlot {
    /// A slot holding `ticket`.
    pub(crate) fn new(ticket: Ticket) -> Self {
        Self(Mutex::new(Some(ticket)))
    }

    /// The factory's ticket the first time; a ticket of the distributor's own after that.
    pub(crate) fn take(&self) -> Ticket {
        let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        taken.unwrap_or_else(|| {
            let (_, mut own) = SharedCapture::new(1, Arc::new(AtomicU64::new(0)));
            own.remove(0)
        })
    }
}
