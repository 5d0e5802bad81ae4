//! `imagebuilder gallery ...`: make and inspect compute galleries, as `az sig` does.
//!
//! AIB never creates a gallery or an image definition; a `SharedImage` target needs both to
//! exist, so these commands make them.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use imagebuilder::core::distribute::{CapturedImage, DistributeContext, DistributorFactory};
use imagebuilder::dist::registry::{
    galleries_in, GalleryStore, ImageDefinition, OsState, RegistryError, VersionTarget,
};
use imagebuilder::dist::LocalTargets;
use imagebuilder::template::model::{
    DistributorSpec, SharedImageTarget, StorageAccountType, TargetRegion, Versioning,
};
use imagebuilder::template::model::{HyperVGeneration, OsType, SecurityType};
use imagebuilder::template::rules::is_date_or_time;
use serde::Serialize;

use super::setup::{DiskFormatArg, EnvArgs, StateArgs};
use super::{Outcome, UsageError};

/// Arguments of `imagebuilder gallery`.
#[derive(Debug, Args)]
pub(crate) struct GalleryArgs {
    #[command(subcommand)]
    command: GalleryCommand,

    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Subcommand)]
enum GalleryCommand {
    /// Create a gallery: /subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/galleries/G.
    Create {
        /// Gallery id.
        id: String,
        /// Region of the gallery.
        #[arg(long, default_value = "local")]
        location: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Create an image definition: GALLERY_ID/images/NAME.
    Define(DefineArgs),
    /// List galleries, or the image definitions of one gallery.
    List {
        /// A gallery id; without it, every gallery.
        gallery_id: Option<String>,
    },
    /// List the complete versions of an image definition, oldest first.
    Versions {
        /// Image definition id.
        definition_id: String,
    },
    /// Show a gallery, an image definition or a version as JSON.
    Show {
        /// Gallery, definition or version id.
        id: String,
    },
    /// Publish a disk file as a new version, replicated to each --region (as `az sig
    /// image-version create` does from a VHD).
    Publish(PublishArgs),
    /// Remove a version from the gallery; its replicas are deleted after it stops being listed.
    DeleteVersion {
        /// Version id: DEFINITION_ID/versions/x.y.z.
        version_id: String,
    },
}

/// `gallery publish`.
#[derive(Debug, Args)]
struct PublishArgs {
    /// The disk file.
    disk: PathBuf,
    /// Its format (named, never guessed).
    #[arg(long, value_enum)]
    format: DiskFormatArg,
    /// Image definition id (automatic version) or DEFINITION_ID/versions/x.y.z.
    #[arg(long)]
    gallery_image_id: String,
    /// A region to replicate to (repeat for several); default: the gallery's region.
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,
    /// With an automatic version: stay within this major version.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(i32::MAX)))]
    major: Option<u32>,
    /// Keep the version from becoming `latest`.
    #[arg(long)]
    exclude_from_latest: bool,
    /// When the version stops being supported (YYYY-MM-DD or an RFC 3339 time).
    #[arg(long, value_parser = date_or_time)]
    end_of_life_date: Option<String>,
    #[command(flatten)]
    env: EnvArgs,
}

fn date_or_time(text: &str) -> Result<String, String> {
    if is_date_or_time(text) {
        Ok(text.to_owned())
    } else {
        Err("expected YYYY-MM-DD or an RFC 3339 time".to_owned())
    }
}

/// `gallery define`.
#[derive(Debug, Args)]
struct DefineArgs {
    /// Image definition id.
    id: String,
    /// Publisher.
    #[arg(long)]
    publisher: String,
    /// Offer.
    #[arg(long)]
    offer: String,
    /// Sku.
    #[arg(long)]
    sku: String,
    /// Operating system of its versions.
    #[arg(long, value_enum, default_value_t = OsArg::Linux)]
    os_type: OsArg,
    /// Generalized (what builds produce) or specialized.
    #[arg(long, value_enum, default_value_t = OsStateArg::Generalized)]
    os_state: OsStateArg,
    /// Generation of its versions: V1 (BIOS) or V2 (UEFI).
    #[arg(long, value_enum, default_value_t = GenerationArg::V1)]
    hyper_v_generation: GenerationArg,
    /// Security type of its versions.
    #[arg(long, value_enum, default_value_t = SecurityArg::Standard)]
    security_type: SecurityArg,
    /// Free text.
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OsArg {
    Linux,
    Windows,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OsStateArg {
    Generalized,
    Specialized,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GenerationArg {
    #[value(name = "V1")]
    V1,
    #[value(name = "V2")]
    V2,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SecurityArg {
    Standard,
    #[value(name = "TrustedLaunch")]
    TrustedLaunch,
    #[value(name = "ConfidentialVM")]
    ConfidentialVm,
}

impl DefineArgs {
    fn definition(&self) -> ImageDefinition {
        ImageDefinition {
            id: self.id.clone(),
            publisher: self.publisher.clone(),
            offer: self.offer.clone(),
            sku: self.sku.clone(),
            os_type: match self.os_type {
                OsArg::Linux => OsType::Linux,
                OsArg::Windows => OsType::Windows,
            },
            os_state: match self.os_state {
                OsStateArg::Generalized => OsState::Generalized,
                OsStateArg::Specialized => OsState::Specialized,
            },
            hyper_v_generation: match self.hyper_v_generation {
                GenerationArg::V1 => HyperVGeneration::V1,
                GenerationArg::V2 => HyperVGeneration::V2,
            },
            security_type: match self.security_type {
                SecurityArg::Standard => SecurityType::Standard,
                SecurityArg::TrustedLaunch => SecurityType::TrustedLaunch,
                SecurityArg::ConfidentialVm => SecurityType::ConfidentialVm,
            },
            description: self.description.clone(),
            created: String::new(),
        }
    }
}

pub(crate) async fn run(args: &GalleryArgs) -> Result<Outcome, UsageError> {
    let galleries = galleries_in(&args.state.dir());
    let result = match &args.command {
        GalleryCommand::Create {
            id,
            location,
            description,
        } => galleries
            .create_gallery(id, location, description)
            .map(|g| print_json(&g)),
        GalleryCommand::Define(define) => galleries
            .define_image(define.definition())
            .map(|d| print_json(&d)),
        GalleryCommand::List { gallery_id } => list(&galleries, gallery_id.as_deref()),
        GalleryCommand::Versions { definition_id } => {
            galleries.versions(definition_id).map(|versions| {
                for v in versions {
                    let latest = if v.exclude_from_latest {
                        " (excluded from latest)"
                    } else {
                        ""
                    };
                    let regions: Vec<&str> = v.replicas.iter().map(|r| r.region.as_str()).collect();
                    out!(
                        "{}\t{}\t{}{latest}",
                        v.version,
                        v.published,
                        regions.join(",")
                    );
                }
            })
        }
        GalleryCommand::Show { id } => show(&galleries, id),
        GalleryCommand::Publish(publish) => return publish_disk(&args.state.dir(), publish).await,
        GalleryCommand::DeleteVersion { version_id } => {
            return delete_version(&galleries, version_id).await;
        }
    };
    match result {
        Ok(()) => Ok(Outcome::Success),
        Err(e) => Err(UsageError(imagebuilder::core::error_chain(&e))),
    }
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => out!("{text}"),
        Err(e) => eprintln!("imagebuilder: cannot print JSON: {e}"),
    }
}

fn list(galleries: &GalleryStore, gallery_id: Option<&str>) -> Result<(), RegistryError> {
    match gallery_id {
        None => {
            for g in galleries.galleries()? {
                out!("{}\t{}", g.id, g.location);
            }
        }
        Some(id) => {
            for d in galleries.definitions(id)? {
                out!(
                    "{}\t{}:{}:{}\t{}\t{}\t{}",
                    d.id,
                    d.publisher,
                    d.offer,
                    d.sku,
                    d.os_type,
                    d.hyper_v_generation,
                    d.security_type
                );
            }
        }
    }
    Ok(())
}

/// Shows whichever kind of resource `id` names, judged by its last fixed segment.
fn show(galleries: &GalleryStore, id: &str) -> Result<(), RegistryError> {
    let lower = id.to_ascii_lowercase();
    if lower.contains("/versions/") {
        print_json(&galleries.version(id)?);
    } else if lower.contains("/images/") {
        print_json(&galleries.definition(id)?);
    } else {
        print_json(&galleries.gallery(id)?);
    }
    Ok(())
}

async fn delete_version(galleries: &GalleryStore, version_id: &str) -> Result<Outcome, UsageError> {
    // Holds the version's number until its replicas are gone.
    let removed = galleries
        .delete_version(version_id)
        .map_err(|e| UsageError(imagebuilder::core::error_chain(&e)))?;
    let manifest = &removed.manifest;
    let mut outcome = Outcome::Success;
    for replica in &manifest.replicas {
        if let Err(e) = imagebuilder::dist::store::delete_object(&replica.uri).await {
            eprintln!(
                "imagebuilder: version {version_id} is deleted, but its replica in {} was not: {e}",
                replica.region
            );
            outcome = Outcome::UsageOrIo;
        }
    }
    out!("deleted {}", manifest.id);
    Ok(outcome)
}

/// Publishes a disk through the same distributor a `SharedImage` target uses.
async fn publish_disk(state_dir: &Path, args: &PublishArgs) -> Result<Outcome, UsageError> {
    let usage = |e: &dyn std::error::Error| UsageError(imagebuilder::core::error_chain(e));
    let environment = args.env.environment(state_dir)?;
    let targets = LocalTargets::new(state_dir, environment);
    let target = VersionTarget::parse(&args.gallery_image_id).map_err(|e| usage(&e))?;
    // The image takes the definition's facts: a disk file does not say them.
    let definition = targets
        .galleries()
        .definition(&target.definition().to_string())
        .map_err(|e| usage(&e))?;
    let format = args.format.into();
    let disk = args.disk.clone();
    let facts = tokio::task::spawn_blocking(move || -> Result<(u64, u64, String), String> {
        let reader = imagebuilder::dist::disk::open_reader(&disk, format)
            .map_err(|e| imagebuilder::core::error_chain(&e))?;
        let size = std::fs::metadata(&disk).map_err(|e| e.to_string())?.len();
        let sha256 = imagebuilder::dist::disk::sha256_file(&disk)
            .map_err(|e| imagebuilder::core::error_chain(&e))?;
        Ok((reader.virtual_size(), size, sha256))
    })
    .await
    .map_err(|e| UsageError(e.to_string()))?
    .map_err(UsageError)?;
    let image = CapturedImage {
        path: args.disk.clone(),
        format,
        virtual_size: facts.0,
        size: facts.1,
        sha256: facts.2,
        os_type: definition.os_type,
        hyper_v_generation: definition.hyper_v_generation,
        security_type: definition.security_type,
        source_version: None,
    };
    let spec = DistributorSpec::SharedImage(SharedImageTarget {
        run_output_name: "publish".into(),
        artifact_tags: Default::default(),
        gallery_image_id: args.gallery_image_id.clone(),
        target_regions: (!args.regions.is_empty()).then(|| {
            args.regions
                .iter()
                .map(|name| TargetRegion {
                    name: name.clone(),
                    replica_count: 1,
                    storage_account_type: StorageAccountType::StandardLrs,
                })
                .collect()
        }),
        replication_regions: None,
        storage_account_type: None,
        exclude_from_latest: args.exclude_from_latest,
        versioning: Some(Versioning::Latest {
            major: args.major.map_or(-1, i64::from),
        }),
        replication_mode: None,
        end_of_life_date: args.end_of_life_date.clone(),
    });
    let distributor = targets.distributor(&spec).map_err(|e| usage(&e))?;
    let staging = state_dir
        .join("tmp")
        .join(format!("publish-{}", std::process::id()));
    let progress = |_: &str, _: u64, _: u64| {};
    let cx = DistributeContext {
        template_name: "gallery-publish",
        run_id: "publish",
        staging_dir: &staging,
        progress: &progress,
    };
    let result = distributor.distribute(&image, &cx).await;
    let _ = std::fs::remove_dir_all(&staging);
    let output = result.map_err(|e| usage(&e))?;
    out!("{}", output.artifact_id);
    Ok(Outcome::Success)
}
