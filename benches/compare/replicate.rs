//! Replication: one gallery version published to one region vs to three, from the same disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{run_quiet, settle};
use crate::Setup;

const GALLERY: &str =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench/providers/Microsoft.Compute/galleries/bench";
pub(crate) const REGIONS: [&str; 3] = ["eastus", "westeurope", "southeastasia"];

pub(crate) struct Gallery {
    state: PathBuf,
    definition: String,
    disk: PathBuf,
}

/// A fresh state directory with one gallery and one image definition.
pub(crate) fn gallery(setup: &Setup, disk: PathBuf) -> Result<Gallery, String> {
    let state = setup.data.join("replicate").join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    let definition = format!("{GALLERY}/images/bench");
    let ib = |args: &[&str]| {
        run_quiet(
            Command::new(&setup.imagebuilder)
                .args(args)
                .arg("--state-dir")
                .arg(&state),
        )
        .map_err(|e| e.to_string())
    };
    ib(&["gallery", "create", GALLERY, "--location", REGIONS[0]])?;
    ib(&[
        "gallery",
        "define",
        &definition,
        "--publisher",
        "bench",
        "--offer",
        "bench",
        "--sku",
        "1",
    ])?;
    Ok(Gallery {
        state,
        definition,
        disk,
    })
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) wall: f64,
    pub(crate) rss_mib: f64,
}

/// Publishes version `1.0.<n>` to the first `regions` regions, then removes the replicas.
pub(crate) fn run(
    imagebuilder: &Path,
    gallery: &Gallery,
    regions: usize,
    n: usize,
) -> Result<Figures, String> {
    settle();
    let mut cmd = Command::new(imagebuilder);
    cmd.args(["gallery", "publish"])
        .arg(&gallery.disk)
        .args(["--format", "qcow2", "--gallery-image-id"])
        .arg(format!("{}/versions/1.0.{n}", gallery.definition))
        .arg("--state-dir")
        .arg(&gallery.state);
    for region in &REGIONS[..regions] {
        cmd.args(["--region", region]);
    }
    let outcome = run_quiet(&mut cmd).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(gallery.state.join("regions"));
    settle();
    Ok(Figures {
        wall: outcome.wall.as_secs_f64(),
        rss_mib: outcome.max_rss_kib as f64 / 1024.0,
    })
}
