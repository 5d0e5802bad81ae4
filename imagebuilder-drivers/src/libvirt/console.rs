//! The serial console through libvirt (a stream, so remote hosts work too): every line into
//! the run's log and the console tail, on a thread of its own because reads block.
//!
//! The console has a connection of its own: a read that waits for console output holds the
//! connection's I/O, and other calls made on the same connection meanwhile (destroying the
//! domain, for one) were seen to wait for it forever.

use std::sync::Arc;

use imagebuilder_core::host::{OutputLine, OutputSink, OutputStream};
use virt::domain::Domain;
use virt::stream::Stream;

use super::conn::Conn;
use crate::vmkit::console::{clean, ConsoleTail};

/// Opens the console of the domain `name` on `uri` and copies it to `sink` and `tail` until
/// the domain stops. Blocking for the open only. A driver without consoles (`test:///`)
/// gets none, with a note.
pub(crate) fn follow(uri: &str, name: &str, sink: Arc<dyn OutputSink>, tail: ConsoleTail) {
    let opened = Conn::open(uri).and_then(|conn| {
        let domain = Domain::lookup_by_name(conn.get(), name)
            .map_err(|e| super::conn::failed("find the domain", e))?;
        let stream = Stream::new(conn.get(), 0)
            .and_then(|stream| {
                domain
                    .open_console(None, &stream, virt::sys::VIR_DOMAIN_CONSOLE_FORCE)
                    .map(|_| stream)
            })
            .map_err(|e| super::conn::failed("open the console", e))?;
        Ok((conn, domain, stream))
    });
    let (conn, domain, stream) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            tracing::info!(
                "no serial console from libvirt: {}",
                imagebuilder_core::error_chain(&e)
            );
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("libvirt-console".into())
        .spawn(move || {
            let mut pending: Vec<u8> = Vec::new();
            let mut buffer = vec![0u8; 4096];
            let emit = |bytes: &[u8]| {
                let line = clean(&String::from_utf8_lossy(bytes));
                tail.push(&line);
                sink.line(OutputLine {
                    stream: OutputStream::Stdout,
                    text: &line,
                });
            };
            while let Ok(n) = stream.recv(&mut buffer) {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buffer[..n]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    emit(&line[..line.len() - 1]);
                }
            }
            if !pending.is_empty() {
                emit(&pending);
            }
            let _ = stream.finish();
            // The handles go before their connection closes.
            drop(domain);
            drop(conn);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the console reader: {e}");
    }
}
