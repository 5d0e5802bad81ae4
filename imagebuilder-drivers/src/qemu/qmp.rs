//! A minimal QMP client: enough to ask a VM to power down or quit.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Sends one QMP command (after the capabilities handshake); returns once QEMU answered.
pub(crate) async fn command(socket: &Path, execute: &str) -> Result<(), String> {
    let exchange = async {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connect to QMP: {e}"))?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        // Greeting, then capabilities, then the command; each answer is one line.
        lines.next_line().await.map_err(|e| e.to_string())?;
        write
            .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .await
            .map_err(|e| e.to_string())?;
        await_return(&mut lines).await?;
        write
            .write_all(format!("{{\"execute\":\"{execute}\"}}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // `quit` may close the socket before answering; that is success too.
        let _ = await_return(&mut lines).await;
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("QMP '{execute}' got no answer"))?
}

async fn await_return(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> Result<(), String> {
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        // Events may arrive before the answer.
        if line.contains("\"return\"") {
            return Ok(());
        }
        if line.contains("\"error\"") {
            return Err(line);
        }
    }
    Err("QMP closed".into())
}
