//! `properties.distribute[]`.

use serde_json::Value;

use super::read_kind;
use super::reader::{read_enum, Cx, Fields};
use super::source::check_id;
use crate::template::diagnostics::{ErrorCode, Path};
use crate::template::model::{
    DistributorSpec, ManagedImageTarget, ObjectStoreTarget, OutputFormat, SharedImageTarget,
    StorageAccountType, TargetRegion, Versioning, VersioningScheme, VhdTarget,
};
use crate::template::rules::{
    is_date_or_time, is_placeholder, is_run_output_name, ResourceIdShape,
};
use crate::template::ApiVersion;

#[derive(Clone, Copy)]
enum Kind {
    ManagedImage,
    SharedImage,
    Vhd,
    ObjectStore,
}

const KINDS: &[(&str, Kind)] = &[
    ("ManagedImage", Kind::ManagedImage),
    ("SharedImage", Kind::SharedImage),
    ("VHD", Kind::Vhd),
    ("ObjectStore", Kind::ObjectStore),
];

/// Reads the whole list, checking that runOutputNames are unique.
pub(super) fn distribute(cx: &mut Cx<'_>, items: Vec<(Path, &Value)>) -> Vec<DistributorSpec> {
    let mut targets = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (path, value) in items {
        let Some(target) = distributor(cx, value, path.clone()) else {
            continue;
        };
        let name = target.run_output_name();
        if !name.is_empty() && !is_placeholder(name) && !seen.insert(name.to_owned()) {
            cx.error(
                &path.field("runOutputName"),
                ErrorCode::BadDistributeType,
                format!("runOutputName '{name}' is already used by another distribute target; each must be unique"),
            );
        }
        targets.push(target);
    }
    targets
}

fn distributor(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<DistributorSpec> {
    let mut f = Fields::of(cx, value, path, ErrorCode::BadDistributeType)?;
    let kind = read_kind(cx, &mut f, KINDS, "distribute type")?;
    let run_output_name = f.str_req(cx, "runOutputName", "runOutputName");
    if !run_output_name.is_empty()
        && !is_run_output_name(&run_output_name)
        && !is_placeholder(&run_output_name)
    {
        cx.error(
            &f.at("runOutputName"),
            ErrorCode::BadDistributeType,
            format!("'{run_output_name}' is not a valid runOutputName; expected 1 to 64 letters, digits, '-', '_' or '.'"),
        );
    }
    let artifact_tags = f.string_map(cx, "artifactTags");
    let target = match kind {
        Kind::ManagedImage => {
            let image_id = f.str_req(cx, "imageId", "imageId (the ARM id of the image to create)");
            check_id(
                cx,
                &f.at("imageId"),
                f.code(),
                ResourceIdShape::ManagedImage,
                &image_id,
            );
            DistributorSpec::ManagedImage(ManagedImageTarget {
                run_output_name,
                artifact_tags,
                image_id,
                location: f.str_req(cx, "location", "location (the region of the image)"),
            })
        }
        Kind::Vhd => DistributorSpec::Vhd(VhdTarget {
            run_output_name,
            artifact_tags,
            uri: f.str_since(cx, "uri", ApiVersion::V2022_07_01),
            sha256: f.bool_or(cx, "sha256", false),
        }),
        Kind::ObjectStore => DistributorSpec::ObjectStore(ObjectStoreTarget {
            run_output_name,
            artifact_tags,
            uri: f.str_req(
                cx,
                "uri",
                "uri (where the file goes: file://, s3://, az://, gs:// or an Azure blob URL)",
            ),
            format: f.enum_opt(cx, "format").unwrap_or(OutputFormat::Qcow2),
            sha256: f.bool_or(cx, "sha256", false),
        }),
        Kind::SharedImage => {
            f.set_code(ErrorCode::BadSharedImageDistribute);
            DistributorSpec::SharedImage(shared_image(cx, &mut f, run_output_name, artifact_tags))
        }
    };
    f.finish(cx);
    Some(target)
}

fn shared_image(
    cx: &mut Cx<'_>,
    f: &mut Fields<'_>,
    run_output_name: String,
    artifact_tags: std::collections::BTreeMap<String, String>,
) -> SharedImageTarget {
    let code = ErrorCode::BadSharedImageDistribute;
    let gallery_image_id = f.str_req(
        cx,
        "galleryImageId",
        "galleryImageId (the gallery image definition, or an explicit version of it)",
    );
    check_id(
        cx,
        &f.at("galleryImageId"),
        code,
        ResourceIdShape::GalleryImage,
        &gallery_image_id,
    );

    let target_regions = f
        .get_since(cx, "targetRegions", ApiVersion::V2022_07_01)
        .and_then(|v| f.elements(cx, "targetRegions", v))
        .map(|items| {
            items
                .into_iter()
                .filter_map(|(path, v)| target_region(cx, v, path))
                .collect::<Vec<_>>()
        });
    let replication_regions = f.string_list(cx, "replicationRegions");
    let storage_account_type: Option<StorageAccountType> = f.enum_opt(cx, "storageAccountType");
    if target_regions.is_some() && replication_regions.is_some() {
        cx.error(
            &f.at("targetRegions"),
            code,
            "give either targetRegions or the deprecated replicationRegions, not both",
        );
    }
    if replication_regions.is_some() {
        cx.warning(
            &f.at("replicationRegions"),
            code,
            "replicationRegions is deprecated; use targetRegions",
        );
    }
    if storage_account_type.is_some() && replication_regions.is_none() {
        cx.error(
            &f.at("storageAccountType"),
            code,
            "storageAccountType is only valid with replicationRegions; with targetRegions give it per region",
        );
    }
    let exclude_from_latest = f.bool_or(cx, "excludeFromLatest", false);
    let end_of_life_date = f.str_opt(cx, "endOfLifeDate");
    if let Some(date) = &end_of_life_date {
        if !is_date_or_time(date) {
            cx.error(
                &f.at("endOfLifeDate"),
                code,
                format!("'{date}' is not a date; expected YYYY-MM-DD or an RFC 3339 time"),
            );
        }
    }
    let versioning = f
        .get_since(cx, "versioning", ApiVersion::V2022_07_01)
        .and_then(|v| versioning(cx, v, f.at("versioning")));
    let replication_mode = match f.get_since(cx, "replicationMode", ApiVersion::V2025_10_01) {
        Some(v) => read_enum(cx, v, &f.at("replicationMode"), code, "replicationMode"),
        None => None,
    };
    SharedImageTarget {
        run_output_name,
        artifact_tags,
        gallery_image_id,
        target_regions,
        replication_regions,
        storage_account_type,
        exclude_from_latest,
        versioning,
        replication_mode,
        end_of_life_date,
    }
}

fn target_region(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<TargetRegion> {
    let mut f = Fields::of(cx, value, path, ErrorCode::BadSharedImageDistribute)?;
    let name = f.str_req(cx, "name", "the region name");
    let replica_count = f.int_or(cx, "replicaCount", 1, 1..=i64::from(u32::MAX));
    let storage_account_type = f
        .enum_opt(cx, "storageAccountType")
        .unwrap_or(StorageAccountType::StandardLrs);
    f.finish(cx);
    Some(TargetRegion {
        name,
        replica_count: u32::try_from(replica_count).unwrap_or(1),
        storage_account_type,
    })
}

fn versioning(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<Versioning> {
    let mut f = Fields::of(cx, value, path, ErrorCode::BadSharedImageDistribute)?;
    let scheme_value = f.get(cx, "scheme");
    let scheme_path = f.at("scheme");
    let scheme = match scheme_value {
        None => {
            cx.error(
                &scheme_path,
                f.code(),
                "scheme is required: 'Latest' or 'Source'",
            );
            None
        }
        Some(v) => read_enum(
            cx,
            v,
            &scheme_path,
            ErrorCode::BadSharedImageDistribute,
            "versioning scheme",
        ),
    };
    let result = match scheme? {
        VersioningScheme::Latest => Versioning::Latest {
            major: f.int_or(cx, "major", -1, -1..=i64::from(i32::MAX)),
        },
        VersioningScheme::Source => {
            if f.has("major") {
                cx.error(
                    &f.at("major"),
                    f.code(),
                    "major is only valid with scheme 'Latest'",
                );
                f.ignore(cx, "major");
            }
            Versioning::Source
        }
    };
    f.finish(cx);
    Some(result)
}
