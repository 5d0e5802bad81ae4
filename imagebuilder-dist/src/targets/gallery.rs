//! `SharedImage` targets: a gallery version replicated to every target region at once.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor,
};
use imagebuilder_core::environment::Environment;
use imagebuilder_core::run::RunOutput;
use imagebuilder_core::template::model::{
    OutputFormat, SharedImageTarget, StorageAccountType, TargetRegion,
};

use super::{blocking, failed, join_url, registry_error, rejected, TicketSlot};
use crate::publish::{remove_outputs, write_all, write_copies, Destination, Output, CANCELED};
use crate::registry::{
    Abandoned, GalleryStore, PublishRequest, Replica, VersionDetails, VersionTarget,
};
use crate::store::delete_object;

/// Publishes a gallery version: checks it against its image definition, chooses its number,
/// writes one qcow2 replica per target region concurrently from a single read of the
/// capture, and only then writes the manifest that makes the version exist.
#[derive(Debug)]
pub struct GalleryDistributor {
    target: SharedImageTarget,
    store: GalleryStore,
    environment: Arc<Environment>,
    ticket: TicketSlot,
}

/// A region to replicate to, with its store.
struct RegionStore {
    region: TargetRegion,
    url: String,
}

impl GalleryDistributor {
    /// A distributor for `target`, publishing in `store`, with regions from `environment`.
    pub fn new(
        target: SharedImageTarget,
        store: GalleryStore,
        environment: Arc<Environment>,
    ) -> Self {
        Self {
            target,
            store,
            environment,
            ticket: TicketSlot::default(),
        }
    }

    pub(crate) fn with_ticket(mut self, ticket: TicketSlot) -> Self {
        self.ticket = ticket;
        self
    }

    /// `targetRegions`, else the deprecated `replicationRegions`, else the gallery's own
    /// region; each with its store.
    fn regions(&self, gallery_location: &str) -> Result<Vec<RegionStore>, DistributeError> {
        let t = &self.target;
        let name = &t.run_output_name;
        let (field, regions) = match (&t.target_regions, &t.replication_regions) {
            (Some(regions), _) => ("targetRegions", regions.clone()),
            (None, Some(names)) => (
                "replicationRegions",
                names
                    .iter()
                    .map(|region| TargetRegion {
                        name: region.clone(),
                        replica_count: 1,
                        storage_account_type: t
                            .storage_account_type
                            .unwrap_or(StorageAccountType::StandardLrs),
                    })
                    .collect(),
            ),
            (None, None) => (
                "the gallery's location",
                vec![TargetRegion {
                    name: gallery_location.to_owned(),
                    replica_count: 1,
                    storage_account_type: StorageAccountType::StandardLrs,
                }],
            ),
        };
        if regions.is_empty() {
            return Err(rejected(
                name,
                format!("{field} is empty; name at least one region"),
            ));
        }
        let mut stores: Vec<RegionStore> = Vec::with_capacity(regions.len());
        for (i, region) in regions.into_iter().enumerate() {
            if stores
                .iter()
                .any(|s| s.region.name.eq_ignore_ascii_case(&region.name))
            {
                return Err(rejected(
                    name,
                    format!("{field}[{i}]: region '{}' is listed twice", region.name),
                ));
            }
            let url = self
                .environment
                .region_store(&region.name)
                .map_err(|e| rejected(name, format!("{field}[{i}]: {e}")))?;
            stores.push(RegionStore { region, url });
        }
        Ok(stores)
    }
}

#[async_trait]
impl Distributor for GalleryDistributor {
    fn run_output_name(&self) -> &str {
        &self.target.run_output_name
    }

    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError> {
        let t = &self.target;
        let name = &t.run_output_name;
        let ticket = self.ticket.take();
        let target = VersionTarget::parse(&t.gallery_image_id)
            .map_err(|e| rejected(name, format!("galleryImageId: {e}")))?;
        let (store, gallery_id) = (self.store.clone(), target.definition().gallery.to_string());
        let gallery = blocking(name, move || store.gallery(&gallery_id))
            .await?
            .map_err(|e| registry_error(name, e))?;
        let regions = self.regions(&gallery.location)?;

        let store = self.store.clone();
        let (id, versioning, source_version) = (
            t.gallery_image_id.clone(),
            t.effective_versioning(),
            image.source_version.clone(),
        );
        let facts = (image.os_type, image.hyper_v_generation, image.security_type);
        let mut publication = blocking(name, move || {
            store.begin_publish(&PublishRequest {
                gallery_image_id: &id,
                versioning,
                source_version: source_version.as_deref(),
                os_type: facts.0,
                hyper_v_generation: facts.1,
                security_type: facts.2,
            })
        })
        .await?
        .map_err(|e| registry_error(name, e))?;

        let path = publication.object_path(OutputFormat::Qcow2.extension());
        let destinations: Vec<Destination> = regions
            .iter()
            .map(|region| Destination::from_uri(&join_url(&region.url, &path), false))
            .collect();
        let uris: Vec<String> = destinations.iter().map(Destination::uri).collect();
        let abandoned = publication.take_abandoned();
        let recorded = uris.clone();
        let publication = blocking(name, move || {
            publication.record_replicas(&recorded).map(|()| publication)
        })
        .await?
        .map_err(|e| registry_error(name, e))?;
        roll_back(abandoned, &uris).await;
        let version = publication.version();
        // The writers keep the number reserved until they are done, even if this future is
        // dropped, so no rerun writes the same replica paths meanwhile.
        let publication = Arc::new(publication);
        // Every replica is the same qcow2. When all go to local files, it is encoded and
        // hashed once and the file copied to the other regions; else one feed per region.
        let local: Option<Vec<PathBuf>> = destinations
            .iter()
            .map(|d| match d {
                Destination::File(path) => Some(path.clone()),
                Destination::Url { .. } => None,
            })
            .collect();
        let results = match local {
            Some(paths) if paths.len() > 1 => {
                let output = Output {
                    feed: ticket.feeds(image, 1).remove(0),
                    format: OutputFormat::Qcow2,
                    destination: destinations[0].clone(),
                    digest: true,
                };
                let copies = paths[1..].to_vec();
                write_copies(output, copies, image, name, cx, publication.clone()).await
            }
            _ => {
                let outputs = ticket
                    .feeds(image, regions.len())
                    .into_iter()
                    .zip(&destinations)
                    .map(|(feed, destination)| Output {
                        feed,
                        format: OutputFormat::Qcow2,
                        destination: destination.clone(),
                        digest: true,
                    })
                    .collect();
                write_all(outputs, image, name, cx, publication.clone()).await
            }
        };
        let failure = results
            .iter()
            .zip(&regions)
            .filter_map(|(result, region)| Some((result.as_ref().err()?, region)))
            .min_by_key(|(message, _)| message.as_str() == CANCELED);
        if let Some((message, region)) = failure {
            let error = failed(
                name,
                &format!(
                    "replicate version {version} to region {}",
                    region.region.name
                ),
                message.clone(),
            );
            remove_outputs(&destinations).await;
            return Err(error);
        }
        let mut replicas = Vec::with_capacity(regions.len());
        for ((result, region), destination) in results.into_iter().zip(&regions).zip(&destinations)
        {
            let Ok(written) = result else { continue };
            replicas.push(Replica {
                region: region.region.name.clone(),
                uri: destination.uri(),
                sha256: written.sha256,
                size: written.size,
                replica_count: region.region.replica_count,
                storage_account_type: region.region.storage_account_type,
            });
        }
        let first = replicas[0].clone();
        let details = VersionDetails {
            exclude_from_latest: t.exclude_from_latest,
            end_of_life_date: t.end_of_life_date.clone(),
            tags: t.artifact_tags.clone(),
            format: OutputFormat::Qcow2.disk_format(),
            virtual_size: image.virtual_size,
            source_version: image.source_version.clone(),
            replicas,
        };
        let publication = Arc::try_unwrap(publication).map_err(|_| {
            failed(
                name,
                "record the version",
                "internal error: the reservation is still shared".into(),
            )
        })?;
        let manifest = match blocking(name, move || publication.commit(details)).await? {
            Ok(manifest) => manifest,
            Err(e) => {
                remove_outputs(&destinations).await;
                return Err(registry_error(name, e));
            }
        };
        Ok(RunOutput {
            run_output_name: name.clone(),
            artifact_id: manifest.id,
            artifact_uri: String::new(),
            sha256: first.sha256,
            size: first.size,
            tags: t.artifact_tags.clone(),
        })
    }
}

/// Deletes the replicas dead publishers left (best effort: a claim whose replicas could not
/// all be deleted stays for the next publish), except those this publish writes anyway.
async fn roll_back(abandoned: Vec<Abandoned>, ours: &[String]) {
    for claim in abandoned {
        let mut all_deleted = true;
        for uri in claim.replicas.iter().filter(|uri| !ours.contains(uri)) {
            if delete_object(uri).await.is_err() {
                all_deleted = false;
            }
        }
        if all_deleted {
            claim.rolled_back();
        }
    }
}
