//! Turning a JSON image template into the typed model, recording every problem found.
//!
//! Each part of the template has its own file; [`reader::Fields`] carries the api-version
//! rules (case, unknown fields, fields added later) so the parts only say what they expect.

mod distribute;
mod envelope;
mod profile;
pub(crate) mod reader;
mod source;
mod steps;

use serde_json::Value;

use self::reader::{json_type, match_spelling, Cx, Fields};
use crate::template::diagnostics::{ErrorCode, Path};
use crate::template::model::{ImageTemplateProperties, SourceSpec, Validation};
use crate::template::rules::{is_placeholder, is_sha256_hex, ResourceIdShape};
use crate::template::ApiVersion;

pub(crate) use envelope::resource;

/// Reads the `type` discriminator of a source, step or target; the object's code is used for
/// a missing or unknown type, and its kinds are listed in the message.
fn read_kind<K: Copy>(
    cx: &mut Cx<'_>,
    f: &mut Fields<'_>,
    kinds: &[(&'static str, K)],
    what: &str,
) -> Option<K> {
    let path = f.at("type");
    let expected: Vec<String> = kinds.iter().map(|(n, _)| format!("'{n}'")).collect();
    let expected = expected.join(", ");
    let text = match f.get(cx, "type") {
        None => {
            cx.error(
                &path,
                f.code(),
                format!("{what} is required; expected one of {expected}"),
            );
            return None;
        }
        Some(Value::String(text)) => text,
        Some(other) => {
            cx.error(
                &path,
                f.code(),
                format!(
                    "expected a {what} (one of {expected}), found {}",
                    json_type(other)
                ),
            );
            return None;
        }
    };
    match_spelling(cx, kinds, text, &path, what).or_else(|| {
        cx.error(
            &path,
            f.code(),
            format!("unknown {what} '{text}'; expected one of {expected}"),
        );
        None
    })
}

/// `sha256Checksum`: empty, a placeholder, or 64 hex digits.
fn sha256_field(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> String {
    let checksum = f.str_or_empty(cx, "sha256Checksum");
    if !checksum.is_empty() && !is_sha256_hex(&checksum) && !is_placeholder(&checksum) {
        cx.error(
            &f.at("sha256Checksum"),
            f.code(),
            format!(
                "'{checksum}' is not a sha256 checksum; expected 64 hex digits ({} characters given)",
                checksum.chars().count()
            ),
        );
    }
    checksum
}

/// Reads `properties`; `also_allowed` names envelope fields that may stand beside them (bare
/// properties carry `apiVersion`). Returns `None` only when its required parts could not be
/// read at all; every problem is in `cx` either way.
pub(crate) fn properties(
    cx: &mut Cx<'_>,
    value: &Value,
    path: Path,
    also_allowed: &[&'static str],
) -> Option<ImageTemplateProperties> {
    let mut f = Fields::of(cx, value, path, ErrorCode::Other)?;
    for name in also_allowed {
        f.ignore(cx, name);
    }

    let source = match f.get(cx, "source") {
        Some(v) => source::source(cx, v, f.at("source")),
        None => {
            cx.error(
                &f.at("source"),
                ErrorCode::BadSourceType,
                "source is required: the image to start from",
            );
            None
        }
    };

    // Only a DiskImage says its operating system up front; others are known at build time.
    let source_os = match &source {
        Some(SourceSpec::DiskImage(disk)) => disk.os_type,
        _ => None,
    };
    let mut customize = Vec::new();
    for (path, value) in f.array(cx, "customize").unwrap_or_default() {
        if let Some(step) = steps::customizer(cx, value, path.clone()) {
            if let Some(os) = source_os {
                steps::check_os(cx, &path, &step, os);
            }
            customize.push(step);
        }
    }

    let validate = f
        .get_since(cx, "validate", ApiVersion::V2022_02_14)
        .and_then(|v| validation(cx, v, f.at("validate")));

    let distribute = match f.array(cx, "distribute") {
        Some(items) if !items.is_empty() => distribute::distribute(cx, items),
        present => {
            if present.is_some() || !f.has("distribute") {
                cx.error(
                    &f.at("distribute"),
                    ErrorCode::BadDistributeType,
                    "distribute is required: at least one of 'ManagedImage', 'SharedImage' or 'VHD'",
                );
            }
            Vec::new()
        }
    };

    let build_timeout_in_minutes = build_timeout(cx, &mut f);
    let vm_profile = f
        .get(cx, "vmProfile")
        .map(|v| profile::vm_profile(cx, v, f.at("vmProfile")))
        .unwrap_or_default();
    let staging_resource_group = staging_resource_group(cx, &mut f);
    let error_handling = f
        .get_since(cx, "errorHandling", ApiVersion::V2023_07_01)
        .and_then(|v| profile::error_handling(cx, v, f.at("errorHandling")));
    let optimize = f
        .get_since(cx, "optimize", ApiVersion::V2022_07_01)
        .and_then(|v| profile::optimize(cx, v, f.at("optimize")));
    let auto_run = f
        .get_since(cx, "autoRun", ApiVersion::V2024_02_01)
        .and_then(|v| profile::auto_run(cx, v, f.at("autoRun")));
    let managed_resource_tags = f
        .get_since(cx, "managedResourceTags", ApiVersion::V2024_02_01)
        .map(|v| f.strings_in(cx, "managedResourceTags", v))
        .unwrap_or_default();
    let additional_data_disks = f
        .get_since(cx, "additionalDataDisks", ApiVersion::V2025_10_01)
        .and_then(|v| f.elements(cx, "additionalDataDisks", v))
        .map(|items| profile::data_disks(cx, items))
        .unwrap_or_default();

    // Read-only outputs of AIB, present in documents saved from a GET.
    for read_only in [
        "provisioningState",
        "provisioningError",
        "lastRunStatus",
        "exactStagingResourceGroup",
    ] {
        f.ignore(cx, read_only);
    }
    f.finish(cx);

    Some(ImageTemplateProperties {
        source: source?,
        customize,
        validate,
        distribute,
        build_timeout_in_minutes,
        vm_profile,
        staging_resource_group,
        error_handling,
        optimize,
        auto_run,
        managed_resource_tags,
        additional_data_disks,
    })
}

fn validation(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<Validation> {
    let mut f = Fields::of(cx, value, path, ErrorCode::BadValidatorType)?;
    let continue_distribute_on_failure = f.bool_or(cx, "continueDistributeOnFailure", false);
    let source_validation_only = f.bool_or(cx, "sourceValidationOnly", false);
    let in_vm_validations = f
        .array(cx, "inVMValidations")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, v)| steps::validator(cx, v, path))
        .collect();
    f.finish(cx);
    Some(Validation {
        continue_distribute_on_failure,
        source_validation_only,
        in_vm_validations,
    })
}

fn build_timeout(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> u32 {
    let minutes = f.int_or(cx, "buildTimeoutInMinutes", 0, 0..=960);
    if (1..6).contains(&minutes) {
        cx.warning(
            &f.at("buildTimeoutInMinutes"),
            ErrorCode::Other,
            format!("{minutes} minutes is below AIB's minimum of 6; AIB builds fail with such a timeout"),
        );
    }
    u32::try_from(minutes).unwrap_or(0)
}

fn staging_resource_group(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<String> {
    let value = f.get_since(cx, "stagingResourceGroup", ApiVersion::V2022_02_14)?;
    let path = f.at("stagingResourceGroup");
    let Some(id) = value.as_str() else {
        cx.error(
            &path,
            ErrorCode::BadStagingResourceGroup,
            format!(
                "expected a resource group ARM id, found {}",
                json_type(value)
            ),
        );
        return None;
    };
    if id.is_empty() {
        return None;
    }
    source::check_id(
        cx,
        &path,
        ErrorCode::BadStagingResourceGroup,
        ResourceIdShape::ResourceGroup,
        id,
    );
    Some(id.to_owned())
}
