//! The per-VM cloud-init NoCloud seed: a build user with an ephemeral ed25519 key and
//! passwordless sudo, and a pre-generated host key the SSH client pins.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use imagebuilder_core::host::HostError;

use super::command::run;
use crate::seed_text::{seed_text, SeedInputs};

/// The keys and seed image of one VM.
#[derive(Debug, Clone)]
pub(crate) struct Seed {
    /// The vfat image labelled CIDATA.
    pub(crate) image: PathBuf,
    /// The build user's private key (OpenSSH format).
    pub(crate) client_key: PathBuf,
    /// The host's public key line, pinned by the client.
    pub(crate) host_public_key: String,
    /// A known_hosts file pinning the host key, for people reaching a kept VM.
    pub(crate) known_hosts: PathBuf,
}

impl Seed {
    /// The `ssh` command a person runs to reach the VM as `user` at `address:port`, with
    /// the build key and the pinned host key.
    pub(crate) fn ssh_command(&self, user: &str, address: &str, port: u16) -> String {
        format!(
            "ssh -i {} -p {port} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes {user}@{address}",
            self.client_key.display(),
            self.known_hosts.display(),
        )
    }
}

/// Generates an ed25519 key pair at `path` (private) and `path.pub`.
async fn keygen(path: &Path, comment: &str) -> Result<(), HostError> {
    let args: [OsString; 8] = [
        "-q".into(),
        "-t".into(),
        "ed25519".into(),
        "-N".into(),
        "".into(),
        "-C".into(),
        comment.into(),
        "-f".into(),
    ];
    let mut all: Vec<OsString> = args.into();
    all.push(path.into());
    run("generate an SSH key", "ssh-keygen", all)
        .await
        .map(drop)
}

async fn read(path: &Path) -> Result<String, HostError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| HostError::Failed {
            operation: format!("read {}", path.display()),
            source: Box::new(e),
        })
}

async fn write(path: &Path, contents: &str) -> Result<(), HostError> {
    tokio::fs::write(path, contents)
        .await
        .map_err(|e| HostError::Failed {
            operation: format!("write {}", path.display()),
            source: Box::new(e),
        })
}

/// Sets `path`'s permission bits to `mode`.
async fn restrict(path: &Path, mode: u32) -> Result<(), HostError> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| HostError::Failed {
            operation: format!("restrict the permissions of {}", path.display()),
            source: Box::new(e),
        })
}

/// Writes keys, user-data and meta-data under `dir` and packs them into a CIDATA vfat image.
///
/// The secrets (the ephemeral build key, the host's private key inside the seed) live in
/// `dir` only, which is made private to this user (0700) first; the build key is 0600 as
/// ssh-keygen writes it, the seed image 0600, and the loose user-data holding the host's
/// private key is removed once packed. The caller removes `dir` with the VM.
pub(crate) async fn create(dir: &Path, instance_id: &str, user: &str) -> Result<Seed, HostError> {
    restrict(dir, 0o700).await?;
    let client_key = dir.join("client_key");
    let host_key = dir.join("host_key");
    keygen(&client_key, "imagebuilder-build-user").await?;
    keygen(&host_key, "imagebuilder-host").await?;
    let client_public = read(&client_key.with_extension("pub")).await?;
    let host_private = read(&host_key).await?;
    let host_public = read(&host_key.with_extension("pub")).await?;

    let text = seed_text(&SeedInputs {
        instance_id,
        user,
        client_public_key: &client_public,
        host_private_key: &host_private,
        host_public_key: &host_public,
    })
    .map_err(|e| HostError::Failed {
        operation: "write the seed".into(),
        source: Box::new(e),
    })?;
    let user_data_path = dir.join("user-data");
    let meta_data_path = dir.join("meta-data");
    write(&user_data_path, &text.user_data).await?;
    write(&meta_data_path, &text.meta_data).await?;
    let known_hosts = dir.join("known_hosts");
    write(
        &known_hosts,
        &format!("[127.0.0.1]:* {}\n", host_public.trim()),
    )
    .await?;
    // The private host key is only for the seed.
    let _ = tokio::fs::remove_file(&host_key).await;

    let image = dir.join("seed.img");
    let args: [OsString; 5] = [
        "-n".into(),
        "CIDATA".into(),
        "-C".into(),
        image.clone().into(),
        "2048".into(),
    ];
    run("format the seed volume", "mkfs.vfat", args).await?;
    let args: [OsString; 5] = [
        "-i".into(),
        image.clone().into(),
        user_data_path.clone().into(),
        meta_data_path.into(),
        "::".into(),
    ];
    run("write the seed volume", "mcopy", args).await?;
    restrict(&image, 0o600).await?;
    let _ = tokio::fs::remove_file(&user_data_path).await;
    Ok(Seed {
        image,
        client_key,
        host_public_key: host_public.trim().to_owned(),
        known_hosts,
    })
}
