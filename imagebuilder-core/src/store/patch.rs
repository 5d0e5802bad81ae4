//! AIB's PATCH of a template (`ImageTemplateUpdateParameters`).
//!
//! A patch document may hold only `tags`, `identity`, `properties.distribute` and
//! `properties.vmProfile`; field names are matched exactly. `tags`, `identity` and
//! `distribute` replace the template's value (`null` removes `tags` or `identity`);
//! `vmProfile` is merged into the current one with JSON merge-patch rules (RFC 7386), so
//! `{"properties": {"vmProfile": {"vmSize": "..."}}}` changes only the size. The result is
//! validated by the template parser, and must keep every existing distribute target.

use std::path::Path;

use serde_json::{Map, Value};

use super::record::{parse_stored, template_json};
use super::StoreError;
use crate::template::ImageTemplate;

const PATCHABLE: &str =
    "only tags, identity, properties.distribute and properties.vmProfile may be patched; an image template is otherwise immutable (delete and recreate it)";

/// The template `current` becomes after `patch`. `template_path` names the template file
/// in errors.
pub(crate) fn apply(
    current: &ImageTemplate,
    patch: &Value,
    template_path: &Path,
) -> Result<ImageTemplate, StoreError> {
    let Value::Object(patch) = patch else {
        return Err(refused("$", format!("expected a JSON object; {PATCHABLE}")));
    };
    let mut doc = template_json(current, template_path)?;
    let Value::Object(doc_map) = &mut doc else {
        return Err(StoreError::corrupt(
            template_path,
            "the template does not serialize to a JSON object",
        ));
    };
    for (field, value) in patch {
        match field.as_str() {
            "tags" | "identity" => replace_or_remove(doc_map, field, value),
            "properties" => patch_properties(doc_map, value)?,
            other => return Err(refused(other, PATCHABLE.to_owned())),
        }
    }
    let patched = parse_stored(&doc, template_path)?;
    let kept = &patched.properties.distribute;
    for target in &current.properties.distribute {
        let name = target.run_output_name();
        if !kept.iter().any(|t| t.run_output_name() == name) {
            return Err(refused(
                "properties.distribute",
                format!("Deleting a distribution target is not allowed: the target with runOutputName '{name}' is missing; a patch must include every existing target"),
            ));
        }
    }
    Ok(patched)
}

fn patch_properties(doc: &mut Map<String, Value>, value: &Value) -> Result<(), StoreError> {
    let Value::Object(patch) = value else {
        return Err(refused(
            "properties",
            "expected an object holding distribute or vmProfile".to_owned(),
        ));
    };
    let properties = doc
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    for (field, value) in patch {
        match field.as_str() {
            "distribute" if value.is_null() => {
                return Err(refused(
                    "properties.distribute",
                    "Deleting a distribution target is not allowed".to_owned(),
                ))
            }
            "distribute" => set(properties, field, value.clone()),
            "vmProfile" => {
                if let Value::Object(map) = properties {
                    merge_patch(map.entry(field.as_str()).or_insert(Value::Null), value);
                }
            }
            other => {
                return Err(refused(
                    &format!("properties.{other}"),
                    PATCHABLE.to_owned(),
                ))
            }
        }
    }
    Ok(())
}

fn replace_or_remove(doc: &mut Map<String, Value>, field: &str, value: &Value) {
    if value.is_null() {
        doc.remove(field);
    } else {
        doc.insert(field.to_owned(), value.clone());
    }
}

fn set(object: &mut Value, field: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(field.to_owned(), value);
    }
}

/// RFC 7386: objects merge member by member, `null` removes a member, anything else
/// replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.as_str()).or_insert(Value::Null), value);
            }
        }
    }
}

fn refused(field: &str, reason: String) -> StoreError {
    StoreError::PatchRefused {
        field: field.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "k": [1]});
        merge_patch(
            &mut target,
            &json!({"a": "z", "c": {"f": null}, "k": [2], "n": {"m": 1}}),
        );
        assert_eq!(
            target,
            json!({"a": "z", "c": {"d": "e"}, "k": [2], "n": {"m": 1}})
        );
    }
}
