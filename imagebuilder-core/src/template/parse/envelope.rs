//! The resource envelope around `properties`: type, name, location, tags and identity.

use serde_json::Value;

use super::reader::{Cx, Fields};
use super::source::check_id;
use crate::template::diagnostics::{ErrorCode, Path};
use crate::template::local_effect::warn_without_effect;
use crate::template::model::{Identity, IdentityType, ImageTemplate, RESOURCE_TYPE};
use crate::template::rules::{is_placeholder, is_run_output_name, ResourceIdShape};

/// Reads a resource object (`type`, `apiVersion`, `location`, `identity`, `properties`, ...).
/// The caller has already read `apiVersion` into `cx`.
pub(crate) fn resource(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<ImageTemplate> {
    let mut f = Fields::of(cx, value, path.clone(), ErrorCode::Other)?;
    f.ignore(cx, "apiVersion");
    resource_type(cx, &mut f);
    let name = f.str_opt(cx, "name");
    if let Some(name) = &name {
        if !is_run_output_name(name) && !is_placeholder(name) {
            cx.error(
                &f.at("name"),
                ErrorCode::Other,
                format!("'{name}' is not a valid image template name; expected 1 to 64 letters, digits, '-', '_' or '.'"),
            );
        }
    }
    let location = f.str_opt(cx, "location");
    let tags = f.string_map(cx, "tags");
    let identity = f.object(cx, "identity").and_then(|i| identity(cx, i));
    let properties = match f.get(cx, "properties") {
        Some(v) => super::properties(cx, v, f.at("properties"), &[]),
        None => {
            cx.error(
                &f.at("properties"),
                ErrorCode::Other,
                "properties is required",
            );
            None
        }
    };
    // ARM and GET-response members that carry nothing for a build.
    for ignored in ["id", "dependsOn", "systemData", "comments", "condition"] {
        f.ignore(cx, ignored);
    }
    f.finish(cx);
    let template = ImageTemplate {
        api_version: cx.version,
        name,
        location,
        tags,
        identity,
        properties: properties?,
        secrets: Vec::new(),
    };
    warn_without_effect(&template, &path, &path.field("properties"), cx.diags);
    Some(template)
}

/// The full type, or the short `Microsoft.VirtualMachineImages` some AIB samples use.
fn resource_type(cx: &mut Cx<'_>, f: &mut Fields<'_>) {
    let Some(text) = f.str_opt(cx, "type") else {
        return;
    };
    let short = RESOURCE_TYPE.split('/').next().unwrap_or(RESOURCE_TYPE);
    if !text.eq_ignore_ascii_case(RESOURCE_TYPE) && !text.eq_ignore_ascii_case(short) {
        cx.error(
            &f.at("type"),
            ErrorCode::Other,
            format!("'{text}' is not an image template; expected type '{RESOURCE_TYPE}'"),
        );
    }
}

fn identity(cx: &mut Cx<'_>, mut f: Fields<'_>) -> Option<Identity> {
    let identity_type = match f.get(cx, "type") {
        Some(v) => {
            super::reader::read_enum(cx, v, &f.at("type"), ErrorCode::Other, "identity type")
        }
        None => {
            cx.error(
                &f.at("type"),
                ErrorCode::Other,
                "identity type is required: 'UserAssigned' or 'None'",
            );
            None
        }
    };
    let mut ids = Vec::new();
    if let Some(value) = f.get(cx, "userAssignedIdentities") {
        let path = f.at("userAssignedIdentities");
        match value.as_object() {
            Some(map) => {
                for id in map.keys() {
                    check_id(
                        cx,
                        &path.field(id),
                        ErrorCode::Other,
                        ResourceIdShape::UserAssignedIdentity,
                        id,
                    );
                    ids.push(id.clone());
                }
            }
            None => cx.error(
                &path,
                ErrorCode::Other,
                "expected an object keyed by identity ARM ids",
            ),
        }
        if ids.len() > 1 {
            cx.error(
                &path,
                ErrorCode::Other,
                format!(
                    "AIB supports a single template identity; {} are given",
                    ids.len()
                ),
            );
        }
    }
    f.ignore(cx, "principalId");
    f.ignore(cx, "tenantId");
    let ids_path = f.at("userAssignedIdentities");
    f.finish(cx);
    let identity_type = identity_type?;
    match identity_type {
        IdentityType::UserAssigned if ids.is_empty() => cx.error(
            &ids_path,
            ErrorCode::Other,
            "identity type 'UserAssigned' needs one identity in userAssignedIdentities",
        ),
        IdentityType::None if !ids.is_empty() => cx.error(
            &ids_path,
            ErrorCode::Other,
            "identity type 'None' must not list identities",
        ),
        _ => {}
    }
    Some(Identity {
        identity_type,
        user_assigned_identities: ids,
    })
}
