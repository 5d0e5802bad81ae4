//! `properties.source`.

use serde_json::Value;

use super::reader::{Cx, Fields};
use super::{read_kind, sha256_field};
use crate::template::diagnostics::{ErrorCode, Path};
use crate::template::model::{
    DiskImageSource, ManagedImageSource, PlanInfo, PlatformImageSource, SharedImageVersionSource,
    SourceSpec,
};
use crate::template::rules::{check_security_types, is_placeholder, ResourceIdShape};
use crate::template::ApiVersion;

#[derive(Clone, Copy)]
enum Kind {
    Platform,
    Managed,
    GalleryVersion,
    Disk,
}

const KINDS: &[(&str, Kind)] = &[
    ("PlatformImage", Kind::Platform),
    ("ManagedImage", Kind::Managed),
    ("SharedImageVersion", Kind::GalleryVersion),
    ("DiskImage", Kind::Disk),
];

pub(super) fn source(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<SourceSpec> {
    let mut f = Fields::of(cx, value, path, ErrorCode::BadSourceType)?;
    let kind = read_kind(cx, &mut f, KINDS, "source type")?;
    let source = match kind {
        Kind::Platform => SourceSpec::PlatformImage(platform_image(cx, &mut f)),
        Kind::Managed => SourceSpec::ManagedImage(managed_image(cx, &mut f)),
        Kind::GalleryVersion => SourceSpec::SharedImageVersion(gallery_version(cx, &mut f)),
        Kind::Disk => SourceSpec::DiskImage(disk_image(cx, &mut f)),
    };
    f.finish(cx);
    Some(source)
}

fn platform_image(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> PlatformImageSource {
    let code = ErrorCode::BadPIRSource;
    f.set_code(code);
    let publisher = f.str_req(cx, "publisher", "the image publisher");
    let offer = f.str_req(cx, "offer", "the image offer");
    let sku = f.str_req(cx, "sku", "the image sku");
    let version = f.str_req(cx, "version", "the image version ('latest' or 'x.y.z')");
    if !version.is_empty() && !is_platform_version(&version) {
        cx.error(
            &f.at("version"),
            code,
            format!("'{version}' is not an image version; expected 'latest' or numbers separated by dots such as '22.04.202401010'"),
        );
    }
    let plan_info = f.object(cx, "planInfo").map(|mut plan| {
        let info = PlanInfo {
            plan_name: plan.str_req(cx, "planName", "planInfo.planName"),
            plan_product: plan.str_req(cx, "planProduct", "planInfo.planProduct"),
            plan_publisher: plan.str_req(cx, "planPublisher", "planInfo.planPublisher"),
        };
        plan.finish(cx);
        info
    });
    let exact_version = f.str_opt(cx, "exactVersion");
    PlatformImageSource {
        publisher,
        offer,
        sku,
        version,
        plan_info,
        exact_version,
    }
}

/// `latest`, a placeholder, or dotted decimal numbers (marketplace versions have 3 or 4).
fn is_platform_version(text: &str) -> bool {
    if text.eq_ignore_ascii_case("latest") || is_placeholder(text) {
        return true;
    }
    let parts: Vec<&str> = text.split('.').collect();
    (1..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn managed_image(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> ManagedImageSource {
    let code = ErrorCode::BadManagedImageSource;
    f.set_code(code);
    let image_id = f.str_req(cx, "imageId", "imageId (the managed image's ARM id)");
    check_id(
        cx,
        &f.at("imageId"),
        code,
        ResourceIdShape::ManagedImage,
        &image_id,
    );
    ManagedImageSource { image_id }
}

fn gallery_version(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> SharedImageVersionSource {
    let code = ErrorCode::BadSharedImageVersionSource;
    f.set_code(code);
    let id = f.str_req(
        cx,
        "imageVersionId",
        "imageVersionId (the gallery image version's ARM id)",
    );
    let path = f.at("imageVersionId");
    check_id(cx, &path, code, ResourceIdShape::GalleryImageVersion, &id);
    if id.to_ascii_lowercase().ends_with("/versions/latest") && cx.version < ApiVersion::V2022_07_01
    {
        cx.warning(
            &path,
            code,
            format!(
                "version 'latest' needs api-version 2022-07-01 or later; this document uses {}",
                cx.version
            ),
        );
    }
    let exact_version = f.str_opt(cx, "exactVersion");
    SharedImageVersionSource {
        image_version_id: id,
        exact_version,
    }
}

fn disk_image(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> DiskImageSource {
    let uri = f.str_req(cx, "uri", "uri (the image file or URL)");
    let format = f.enum_opt(cx, "format");
    let sha256_checksum = sha256_field(cx, f);
    let os_type = f.enum_opt(cx, "osType");
    let hyper_v_generation = f.enum_opt(cx, "hyperVGeneration");
    let security_type = f.enum_opt(cx, "securityType");
    if let Some(security) = security_type {
        if let Err(e) = check_security_types(security, None) {
            cx.error(
                &f.at("securityType"),
                ErrorCode::BadSourceType,
                e.to_string(),
            );
        }
    }
    DiskImageSource {
        uri,
        format,
        sha256_checksum,
        os_type,
        hyper_v_generation,
        security_type,
    }
}

/// Checks a non-empty ARM id against its shape (an empty one was reported as missing).
pub(super) fn check_id(
    cx: &mut Cx<'_>,
    path: &Path,
    code: ErrorCode,
    shape: ResourceIdShape,
    id: &str,
) {
    // Empty was reported as missing; a whole-value placeholder is filled in by the user.
    if id.is_empty() || is_placeholder(id) {
        return;
    }
    if let Err(message) = shape.check(id) {
        cx.error(path, code, message);
    }
}
