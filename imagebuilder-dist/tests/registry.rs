//! The gallery and managed-image registries on real files: existence rules, version choice,
//! reservations, `latest`, and what a crashed publisher leaves.

use std::collections::BTreeMap;
use std::path::PathBuf;

use imagebuilder_core::source::{ImageStore, InMemoryCatalog, Source, SourceResolver};
use imagebuilder_core::template::model::{
    DiskFormat, HyperVGeneration, OsType, SecurityType, SharedImageVersionSource, SourceSpec,
    StorageAccountType, Versioning,
};
use imagebuilder_dist::registry::{
    GalleryStore, ImageDefinition, ManagedImage, ManagedImageStore, OsState, PublishRequest,
    RegistryError, Replica, VersionDetails,
};

const GALLERY: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1";

fn temp_root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ib-registry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn definition_id() -> String {
    format!("{GALLERY}/images/debian")
}

fn gallery_with_definition(root: &PathBuf) -> GalleryStore {
    let store = GalleryStore::open(root);
    store.create_gallery(GALLERY, "westeurope", "test").unwrap();
    store
        .define_image(ImageDefinition {
            id: definition_id(),
            publisher: "Contoso".into(),
            offer: "debian".into(),
            sku: "12".into(),
            os_type: OsType::Linux,
            os_state: OsState::Generalized,
            hyper_v_generation: HyperVGeneration::V2,
            security_type: SecurityType::Standard,
            description: String::new(),
            created: String::new(),
        })
        .unwrap();
    store
}

fn request(id: &str, versioning: Versioning) -> PublishRequest<'_> {
    PublishRequest {
        gallery_image_id: id,
        versioning,
        source_version: Some("12.5.0"),
        os_type: OsType::Linux,
        hyper_v_generation: HyperVGeneration::V2,
        security_type: SecurityType::Standard,
    }
}

fn details(uri: &str, exclude_from_latest: bool) -> VersionDetails {
    VersionDetails {
        exclude_from_latest,
        end_of_life_date: None,
        tags: BTreeMap::from([("team".to_owned(), "images".to_owned())]),
        format: DiskFormat::Qcow2,
        virtual_size: 1 << 30,
        source_version: None,
        replicas: vec![Replica {
            region: "westeurope".into(),
            uri: uri.to_owned(),
            sha256: "a".repeat(64),
            size: 42,
            replica_count: 1,
            storage_account_type: StorageAccountType::StandardLrs,
        }],
    }
}

fn publish(store: &GalleryStore, id: &str, versioning: Versioning, exclude: bool) -> String {
    let publication = store.begin_publish(&request(id, versioning)).unwrap();
    let uri = format!("file:///regions/{}", publication.object_path("qcow2"));
    publication.commit(details(&uri, exclude)).unwrap().version
}

#[test]
fn gallery_and_definition_must_exist_and_say_how_to_make_them() {
    let root = temp_root("exist");
    let store = GalleryStore::open(&root);
    let err = store
        .begin_publish(&request(&definition_id(), Versioning::Latest { major: -1 }))
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }));
    assert!(err.to_string().contains("gallery create"), "{err}");
    store.create_gallery(GALLERY, "westeurope", "").unwrap();
    let err = store.definition(&definition_id()).unwrap_err().to_string();
    assert!(
        err.contains("image definition") && err.contains("gallery define"),
        "{err}"
    );
    // ARM names compare case-insensitively.
    assert!(matches!(
        store.create_gallery(&GALLERY.replace("g1", "G1"), "x", ""),
        Err(RegistryError::AlreadyExists { .. })
    ));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_image_must_match_the_definition() {
    let root = temp_root("match");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    let mut gen1 = request(&id, Versioning::Latest { major: -1 });
    gen1.hyper_v_generation = HyperVGeneration::V1;
    let err = store.begin_publish(&gen1).unwrap_err().to_string();
    assert!(
        err.contains("hyperVGeneration is V1") && err.contains("requires V2"),
        "{err}"
    );
    let mut trusted = request(&id, Versioning::Latest { major: -1 });
    trusted.security_type = SecurityType::TrustedLaunch;
    let err = store.begin_publish(&trusted).unwrap_err().to_string();
    assert!(err.contains("securityType"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn versions_latest_major_source_and_explicit() {
    let root = temp_root("versions");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: -1 }, false),
        "1.0.0"
    );
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: -1 }, false),
        "1.0.1"
    );
    assert_eq!(
        publish(
            &store,
            &format!("{id}/versions/2.1.0"),
            Versioning::Latest { major: -1 },
            false
        ),
        "2.1.0"
    );
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: 1 }, false),
        "1.0.2"
    );
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: -1 }, false),
        "2.1.1"
    );
    assert_eq!(publish(&store, &id, Versioning::Source, false), "12.5.0");
    let again = store
        .begin_publish(&request(&id, Versioning::Source))
        .unwrap_err();
    assert!(
        matches!(again, RegistryError::AlreadyExists { .. }),
        "{again}"
    );
    let explicit = store
        .begin_publish(&request(
            &format!("{id}/versions/1.0.0"),
            Versioning::Source,
        ))
        .unwrap_err();
    assert!(
        explicit
            .to_string()
            .contains("versions/1.0.0 already exists"),
        "{explicit}"
    );
    let listed: Vec<String> = store
        .versions(&id)
        .unwrap()
        .into_iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(
        listed,
        ["1.0.0", "1.0.1", "1.0.2", "2.1.0", "2.1.1", "12.5.0"]
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_version_in_progress_is_invisible_and_its_number_taken() {
    let root = temp_root("pending");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    let first = store
        .begin_publish(&request(&id, Versioning::Latest { major: -1 }))
        .unwrap();
    let second = store
        .begin_publish(&request(&id, Versioning::Latest { major: -1 }))
        .unwrap();
    assert_eq!(first.version().to_string(), "1.0.0");
    assert_eq!(second.version().to_string(), "1.0.1");
    assert!(store.versions(&id).unwrap().is_empty());
    let busy = store
        .begin_publish(&request(
            &format!("{id}/versions/1.0.0"),
            Versioning::Source,
        ))
        .unwrap_err();
    assert!(
        busy.to_string().contains("another run is publishing it"),
        "{busy}"
    );
    drop(first);
    second.commit(details("file:///x", false)).unwrap();
    // The dropped publication freed 1.0.0; the numbering goes on from the highest.
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: -1 }, false),
        "1.0.2"
    );
    assert_eq!(
        publish(
            &store,
            &format!("{id}/versions/1.0.0"),
            Versioning::Source,
            false
        ),
        "1.0.0"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_crashed_publishers_leftover_is_replaced() {
    let root = temp_root("crash");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    // What a SIGKILLed publisher leaves: a pending file nobody holds.
    let versions = root.join("s1/rg/g1/images/debian/versions");
    std::fs::write(versions.join("1.0.0.pending"), b"").unwrap();
    assert!(store.versions(&id).unwrap().is_empty());
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: -1 }, false),
        "1.0.0"
    );
    assert!(!versions.join("1.0.0.pending").exists());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_dead_publishers_claim_is_handed_over_for_rollback_unless_it_had_committed() {
    let root = temp_root("rollback");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    let versions = root.join("s1/rg/g1/images/debian/versions");
    // 1.0.0 committed, but its publisher died before dropping its claim.
    assert_eq!(
        publish(&store, &id, Versioning::Latest { major: -1 }, false),
        "1.0.0"
    );
    std::fs::write(
        versions.join("1.0.0.pending"),
        br#"{"replicas": ["file:///r/1.0.0"]}"#,
    )
    .unwrap();
    // 1.0.1 died while writing its replicas.
    std::fs::write(
        versions.join("1.0.1.pending"),
        br#"{"replicas": ["file:///r1/1.0.1", "file:///r2/1.0.1"]}"#,
    )
    .unwrap();

    let mut publication = store
        .begin_publish(&request(&id, Versioning::Latest { major: -1 }))
        .unwrap();
    assert_eq!(
        publication.version().to_string(),
        "1.0.1",
        "a dead claim frees its number"
    );
    let abandoned = publication.take_abandoned();
    let replicas: Vec<&str> = abandoned
        .iter()
        .flat_map(|a| a.replicas.iter().map(String::as_str))
        .collect();
    assert_eq!(
        replicas,
        ["file:///r1/1.0.1", "file:///r2/1.0.1"],
        "only the uncommitted publish is rolled back"
    );
    assert!(!versions.join("1.0.0.pending").exists());
    publication
        .record_replicas(&["file:///r1/new".to_owned()])
        .unwrap();
    let recorded = std::fs::read_to_string(versions.join("1.0.1.pending")).unwrap();
    assert!(recorded.contains("file:///r1/new"), "{recorded}");
    for claim in abandoned {
        claim.rolled_back();
    }
    drop(publication);
    assert!(!versions.join("1.0.1.pending").exists());
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn latest_skips_excluded_versions_and_serves_sources() {
    let root = temp_root("latest");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    publish(&store, &id, Versioning::Latest { major: -1 }, false);
    publish(&store, &id, Versioning::Latest { major: -1 }, true);
    let resolver = SourceResolver::new(
        std::sync::Arc::new(InMemoryCatalog::new()),
        std::sync::Arc::new(ManagedImageStore::open(root.join("managed"))),
        std::sync::Arc::new(store.clone()),
    );
    let latest = SourceSpec::SharedImageVersion(SharedImageVersionSource {
        image_version_id: format!("{id}/versions/latest"),
        exact_version: None,
    });
    let disk = resolver.resolve(&latest).await.unwrap();
    assert_eq!(disk.exact_version.as_deref(), Some("1.0.0"));
    assert_eq!(disk.hyper_v_generation, HyperVGeneration::V2);
    assert!(
        disk.location.ends_with("/debian/1.0.0/disk.qcow2"),
        "{}",
        disk.location
    );
    let pinned = SourceSpec::SharedImageVersion(SharedImageVersionSource {
        image_version_id: format!("{id}/versions/1.0.1"),
        exact_version: None,
    });
    assert_eq!(
        resolver
            .resolve(&pinned)
            .await
            .unwrap()
            .exact_version
            .as_deref(),
        Some("1.0.1")
    );
    store
        .delete_version(&format!("{id}/versions/1.0.0"))
        .unwrap();
    assert!(
        resolver.resolve(&latest).await.is_err(),
        "only an excluded version is left"
    );
    assert!(store.versions("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1/images/nope").is_err());
    assert!(ImageStore::versions(
        &store,
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1/images/nope"
    )
    .await
    .unwrap()
    .is_empty());
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn managed_images_are_never_replaced_and_serve_sources() {
    let root = temp_root("managed");
    let store = ManagedImageStore::open(&root);
    let id = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/images/web";
    let reservation = store.reserve(id).unwrap();
    assert!(store
        .reserve(id)
        .unwrap_err()
        .to_string()
        .contains("another run is making it"));
    assert_eq!(
        reservation.object_path("qcow2"),
        "managed-images/s1/rg/web.qcow2"
    );
    reservation
        .commit(ManagedImage {
            id: String::new(),
            location: "westeurope".into(),
            os_type: OsType::Linux,
            hyper_v_generation: HyperVGeneration::V1,
            security_type: SecurityType::Standard,
            uri: "file:///regions/westeurope/managed-images/s1/rg/web.qcow2".into(),
            format: DiskFormat::Qcow2,
            sha256: "b".repeat(64),
            size: 7,
            virtual_size: 1 << 20,
            tags: BTreeMap::new(),
            created: "2026-11-26T00:00:00Z".into(),
        })
        .unwrap();
    let err = store.reserve(&id.replace("web", "WEB")).unwrap_err();
    assert!(matches!(err, RegistryError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.list().unwrap().len(), 1);
    let entries = ImageStore::versions(&store, id).await.unwrap();
    assert_eq!(
        entries[0].disk.sha256.as_deref(),
        Some("b".repeat(64).as_str())
    );
    store.delete(id).unwrap();
    assert!(ImageStore::versions(&store, id).await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn concurrent_publishers_never_share_a_number() {
    let root = temp_root("race");
    let store = gallery_with_definition(&root);
    let id = definition_id();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (store, id) = (store.clone(), id.clone());
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| publish(&store, &id, Versioning::Latest { major: -1 }, false))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 100, "every publish got its own number");
    assert_eq!(store.versions(&id).unwrap().len(), 100);
    let pending = std::fs::read_dir(root.join("s1/rg/g1/images/debian/versions"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".pending")
        })
        .count();
    assert_eq!(pending, 0, "no reservation outlives its publisher");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn concurrent_makers_of_one_managed_image_make_it_once() {
    let root = temp_root("managed-race");
    let store = ManagedImageStore::open(&root);
    for round in 0..30 {
        let id = format!(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/images/img{round}"
        );
        let made: usize = (0..4)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                std::thread::spawn(move || {
                    let Ok(reservation) = store.reserve(&id) else {
                        return 0;
                    };
                    let image = ManagedImage {
                        id: String::new(),
                        location: "eastus".into(),
                        os_type: OsType::Linux,
                        hyper_v_generation: HyperVGeneration::V1,
                        security_type: SecurityType::Standard,
                        uri: "file:///x".into(),
                        format: DiskFormat::Qcow2,
                        sha256: "c".repeat(64),
                        size: 1,
                        virtual_size: 1,
                        tags: BTreeMap::new(),
                        created: String::new(),
                    };
                    usize::from(reservation.commit(image).is_ok())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(made, 1, "round {round}: exactly one maker wins");
    }
    let _ = std::fs::remove_dir_all(root);
}
