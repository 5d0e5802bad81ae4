//! Secure parameter values, kept apart from `template.json`.
//!
//! A template evaluated from an ARM deployment carries the values of its secure parameters
//! (`secureString`, `secureObject`) wherever expressions put them: an inline script, an
//! environment value, a URI. AIB never returns those values, and neither does this store:
//! every JSON string of the template that holds one is written to `template.json` with the
//! values replaced by `<secure value>`, and kept whole in `secrets.json` beside it, a file
//! created with mode 0600 that holds the original strings by JSON pointer and the values the
//! engine scrubs. Loading puts the strings back, so `template run` builds what was created.
//! The file goes with the template's directory on delete.
//!
//! Values shorter than four characters are not treated as secrets anywhere (see
//! [`ImageTemplate::secrets`](crate::template::ImageTemplate::secrets)): replacing every
//! "on" would mangle the template and such a value protects nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fsio::{read_optional, write_private_json};
use super::StoreError;
use crate::template::arm::REDACTED;

/// `secrets.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SecretsFile {
    /// The secure values, as [`ImageTemplate::secrets`](crate::template::ImageTemplate::secrets).
    pub(crate) values: Vec<String>,
    /// Each string of `template.json` that held a secure value: its JSON pointer and its
    /// original text.
    pub(crate) strings: BTreeMap<String, String>,
}

/// Splits a template's JSON into what `template.json` may hold and what only `secrets.json`
/// may. `None` when the template holds no secure value.
///
/// # Errors
/// [`StoreError::SecretInName`] when a secure value is part of an object key: only string
/// values are kept apart, so such a template is not stored at all.
pub(crate) fn split(
    value: &Value,
    secrets: &[String],
) -> Result<(Value, Option<SecretsFile>), StoreError> {
    let mut redacted = value.clone();
    if secrets.is_empty() {
        return Ok((redacted, None));
    }
    let mut strings = BTreeMap::new();
    redact(&mut redacted, &mut String::new(), secrets, &mut strings)?;
    let file = SecretsFile {
        values: secrets.to_vec(),
        strings,
    };
    Ok((redacted, Some(file)))
}

/// Replaces every secure value in the strings of `value` with `<secure value>`: the JSON
/// AIB would return for the template.
pub(crate) fn redacted(value: &Value, secrets: &[String]) -> Value {
    let mut value = value.clone();
    let mut strings = BTreeMap::new();
    // Keys are left alone here: a template holding a secure value in a key is never stored.
    let _ = redact(&mut value, &mut String::new(), secrets, &mut strings);
    value
}

fn redact(
    value: &mut Value,
    pointer: &mut String,
    secrets: &[String],
    strings: &mut BTreeMap<String, String>,
) -> Result<(), StoreError> {
    match value {
        Value::String(text) => {
            if let Some(scrubbed) = scrub(text, secrets) {
                strings.insert(pointer.clone(), std::mem::replace(text, scrubbed));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                redact(item, pointer, secrets, strings)?;
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if scrub(key, secrets).is_some() {
                    let at = if pointer.is_empty() { "/" } else { pointer };
                    return Err(StoreError::SecretInName {
                        pointer: at.to_owned(),
                    });
                }
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                redact(item, pointer, secrets, strings)?;
                pointer.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// `text` with each secure value replaced, in one pass so that a replacement is never
/// scanned again; longer values first (the list is sorted so). `None` when it holds none.
fn scrub(text: &str, secrets: &[String]) -> Option<String> {
    if !secrets
        .iter()
        .any(|s| !s.is_empty() && text.contains(s.as_str()))
    {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while let Some(c) = rest.chars().next() {
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            if let Some(after) = rest.strip_prefix(s.as_str()) {
                out.push_str(REDACTED);
                rest = after;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// Puts the original strings back into the JSON read from `template.json`.
///
/// # Errors
/// [`StoreError::Corrupt`] naming `template_path` when a recorded string has no place in it
/// (the file was edited by hand).
pub(crate) fn join(
    value: &mut Value,
    file: &SecretsFile,
    template_path: &Path,
) -> Result<(), StoreError> {
    for (pointer, original) in &file.strings {
        match value.pointer_mut(pointer) {
            Some(Value::String(text)) => *text = original.clone(),
            _ => {
                return Err(StoreError::corrupt(
                    template_path,
                    format!("{pointer} no longer holds the string secrets.json has for it"),
                ))
            }
        }
    }
    Ok(())
}

/// Reads `secrets.json`; `None` when the template has none.
pub(crate) fn load(path: &Path) -> Result<Option<SecretsFile>, StoreError> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt(path, e.to_string())),
    }
}

/// Writes `secrets.json` (mode 0600), or removes it when there is nothing to keep.
pub(crate) fn save(path: &Path, file: Option<&SecretsFile>) -> Result<(), StoreError> {
    match file {
        Some(file) => write_private_json(path, file),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::io("remove", path, e))
            }
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_holding_secrets_are_kept_apart_and_put_back_exactly() {
        let secrets = ["hunter2-long".to_owned(), "hunter2".to_owned()];
        let value = json!({
            "a/b": ["x hunter2-long y hunter2 z", "plain", 3],
            "env": {"TOKEN": "hunter2"},
            "x~": "<secure value> hunter2"
        });
        let (stored, file) = split(&value, &secrets).unwrap();
        let file = file.unwrap();
        let text = stored.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(
            stored["a/b"][0], "x <secure value> y <secure value> z",
            "longest first, never rescanned"
        );
        assert_eq!(file.strings.len(), 3);
        assert!(file.strings.contains_key("/a~1b/0"));
        assert!(file.strings.contains_key("/x~0"));
        let mut back = stored.clone();
        join(&mut back, &file, Path::new("template.json")).unwrap();
        assert_eq!(back, value);
        assert_eq!(redacted(&value, &secrets), stored);
    }

    #[test]
    fn no_secrets_no_file_and_secrets_in_keys_are_refused() {
        let value = json!({"tags": {"k": "v"}});
        assert_eq!(split(&value, &[]).unwrap(), (value.clone(), None));
        let err = split(&json!({"tags": {"hunter2": "v"}}), &["hunter2".to_owned()]);
        match err {
            Err(StoreError::SecretInName { pointer }) => assert_eq!(pointer, "/tags"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_edited_template_that_lost_a_secret_string_is_corrupt() {
        let secrets = ["hunter2".to_owned()];
        let (mut stored, file) = split(&json!({"a": ["hunter2"]}), &secrets).unwrap();
        stored["a"] = json!([]);
        let err = join(&mut stored, &file.unwrap(), Path::new("template.json"));
        assert!(matches!(err, Err(StoreError::Corrupt { .. })), "{err:?}");
    }
}
