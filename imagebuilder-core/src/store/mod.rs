//! The template store: the local counterpart of AIB's `imageTemplates` resources.
//!
//! One state directory holds every template, each with a staging area kept across runs and
//! removed with the template. It follows AIB's resource rules:
//!
//! | Operation | Rule |
//! |---|---|
//! | [`create`](TemplateStore::create) | an existing name is refused, never replaced (templates are immutable); `provisioningState` is `Succeeded` once written |
//! | [`patch`](TemplateStore::patch) | only `tags`, `identity`, `properties.distribute`, `properties.vmProfile`; every distribute target kept; re-validated |
//! | [`delete`](TemplateStore::delete) | refused while a run is active; removes the staging area |
//! | [`begin_run`](TemplateStore::begin_run) | one run at a time; `lastRunStatus` from `Running`/`Queued` to a terminal state with `endTime` |
//! | [`request_cancel`](TemplateStore::request_cancel) | only with an active run, which may be in another process |
//!
//! Names are matched case-insensitively (ARM resource names are), keeping the case they were
//! created with.
//!
//! # Concurrency and crashes
//! Several stores, threads or processes may use one state directory. Every file is written
//! to a temporary file, synced and renamed into place, so a crash never leaves a half
//! written file. Each template has two advisory file locks under `<state>/locks/`:
//! a *mutation lock*, held exclusively by every write (create, patch, delete, status and
//! output updates) and shared by reads, and a *run lock*, held by the active run's
//! [`RunGuard`] for its whole life. A lock dies with the process that held it, so whether a
//! run is active is always known from the run lock, never from a marker a crash could
//! leave behind. A template is created in `<state>/tmp/` and renamed into
//! `<state>/templates/`, and deleted by the reverse rename, so it is always either wholly
//! there or not there.
//!
//! The API is synchronous `std::fs` code; async callers use
//! `tokio::task::spawn_blocking`.
//!
//! ```
//! use imagebuilder_core::run::{RunOutput, RunState, RunSubState};
//! use imagebuilder_core::store::TemplateStore;
//! use imagebuilder_core::template::{parse_document, ParseOptions};
//!
//! # let dir = std::env::temp_dir().join(format!("imagebuilder-store-doc-{}", std::process::id()));
//! let store = TemplateStore::open(&dir)?;
//! let doc = parse_document(
//!     r#"{"apiVersion": "2024-02-01", "location": "westus2", "properties": {
//!           "source": {"type": "PlatformImage", "publisher": "Canonical",
//!                      "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
//!                      "version": "latest"},
//!           "distribute": [{"type": "VHD", "runOutputName": "jammy-vhd"}]}}"#,
//!     &ParseOptions::default(),
//! )
//! .expect("valid template");
//! store.create("jammy", &doc.templates[0])?;
//!
//! let run = store.begin_run("jammy")?;
//! run.set_status(RunState::Running, RunSubState::Distributing, "")?;
//! run.record_outputs(&[RunOutput {
//!     run_output_name: "jammy-vhd".into(),
//!     artifact_id: "file:///images/jammy.vhd".into(),
//!     artifact_uri: "file:///images/jammy.vhd".into(),
//!     sha256: "0".repeat(64),
//!     size: 1 << 30,
//!     tags: Default::default(),
//! }])?;
//! run.finish(RunState::Succeeded, RunSubState::Distributing, "")?;
//!
//! let record = store.get("jammy")?;
//! assert_eq!(record.last_run_status.unwrap().run_state, RunState::Succeeded);
//! assert_eq!(store.outputs("jammy")?[0].run_output_name, "jammy-vhd");
//! store.delete("jammy")?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), imagebuilder_core::store::StoreError>(())
//! ```

mod error;
pub mod fsio;
mod layout;
pub mod lock;
mod patch;
mod record;
mod run;
mod secrets;

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

pub use error::StoreError;
pub use record::TemplateRecord;
pub use run::RunGuard;

use self::fsio::write_private_json;
use self::fsio::{create_dir_all, read_json, sync_dir, tmp_path, write_atomic, write_json};
use self::layout::{is_key, key_of, staging_of, StateLayout, TemplatePaths};
use self::layout::{CANCEL_MARKER, RESOURCE_FILE, SECRETS_FILE, TEMPLATE_FILE};
use self::lock::FileLock;
use self::record::{
    load_record, load_template, parse_stored, stored_json, template_json, ResourceState,
};
use crate::run::{ProvisioningState, RunOutput};
use crate::template::ImageTemplate;

/// A state directory of image templates. Cheap to clone; every call works on the files, so
/// stores opened on one directory by several threads or processes see each other's changes.
#[derive(Debug, Clone)]
pub struct TemplateStore {
    layout: StateLayout,
}

impl TemplateStore {
    /// Opens a state directory, creating it if needed.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created.
    pub fn open(state_dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let layout = StateLayout {
            root: state_dir.into(),
        };
        for dir in [layout.templates(), layout.locks(), layout.tmp()] {
            create_dir_all(&dir)?;
        }
        Ok(Self { layout })
    }

    /// The embedded default state directory: `$IMAGEBUILDER_STATE_DIR`, else
    /// `$XDG_STATE_HOME/imagebuilder`, else `$HOME/.local/state/imagebuilder`, else
    /// `.imagebuilder-state` in the current directory. Empty variables are ignored, and so
    /// is a relative `XDG_STATE_HOME`, as the XDG specification asks.
    pub fn default_state_dir() -> PathBuf {
        default_state_dir_from(|name| std::env::var_os(name))
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.layout.root
    }

    /// Creates a template named `name` (its `name` is set to it). The template is validated
    /// again as the store will read it back.
    ///
    /// # Errors
    /// [`StoreError::InvalidName`]; [`StoreError::AlreadyExists`] when a template of that
    /// name exists (AIB templates are immutable: delete and recreate); [`StoreError::Invalid`]
    /// when the template does not validate; [`StoreError::Io`].
    pub fn create(
        &self,
        name: &str,
        template: &ImageTemplate,
    ) -> Result<TemplateRecord, StoreError> {
        let (key, paths) = self.paths(name)?;
        let mut template = template.clone();
        template.name = Some(name.to_owned());
        let full = template_json(&template, &paths.template_file())?;
        let (value, secrets) = self::secrets::split(&full, &template.secrets)?;
        let secret_values = std::mem::take(&mut template.secrets);
        let mut template = parse_stored(&full, &paths.template_file())?;
        template.secrets = secret_values;

        let _lock = FileLock::exclusive(&paths.mutation_lock)?;
        if exists(&paths.dir)? {
            return Err(StoreError::AlreadyExists {
                name: name.to_owned(),
            });
        }
        let tmp = tmp_path(&self.layout.tmp(), &key, "creating");
        let state = ResourceState::new(OffsetDateTime::now_utc());
        let built = (|| {
            let staging = staging_of(&tmp);
            for sub in ["artifacts", "runs", "outputs"] {
                create_dir_all(&staging.join(sub))?;
            }
            write_json(&tmp.join(TEMPLATE_FILE), &value)?;
            if let Some(secrets) = &secrets {
                write_private_json(&tmp.join(SECRETS_FILE), secrets)?;
            }
            write_json(&tmp.join(RESOURCE_FILE), &state)?;
            fs::rename(&tmp, &paths.dir).map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty => {
                    StoreError::AlreadyExists {
                        name: name.to_owned(),
                    }
                }
                _ => StoreError::io("move into place", &paths.dir, e),
            })
        })();
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        sync_dir(&self.layout.templates())?;
        Ok(TemplateRecord {
            name: name.to_owned(),
            template,
            provisioning_state: state.provisioning_state,
            provisioning_error: None,
            last_run_status: None,
            last_run_id: None,
            created: state.created,
            staging_dir: paths.staging(),
        })
    }

    /// The template named `name`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::InvalidName`], [`StoreError::Corrupt`] when a
    /// state file cannot be read as what it should hold, [`StoreError::Io`].
    pub fn get(&self, name: &str) -> Result<TemplateRecord, StoreError> {
        let (key, paths) = self.paths(name)?;
        self.load(name, &key, &paths)
    }

    /// Every template, sorted by name.
    ///
    /// # Errors
    /// As [`TemplateStore::get`] for any template; a directory under `templates/` that no
    /// template name could produce is [`StoreError::Corrupt`].
    pub fn list(&self) -> Result<Vec<TemplateRecord>, StoreError> {
        let dir = self.layout.templates();
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("list", &dir, e))?;
        let mut records = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let path = entry.path();
            let is_dir = entry
                .file_type()
                .map_err(|e| StoreError::io("inspect", &path, e))?
                .is_dir();
            if !is_dir {
                continue;
            }
            let key = entry.file_name().to_string_lossy().into_owned();
            if !is_key(&key) {
                return Err(StoreError::corrupt(
                    path,
                    "not a template directory: its name is not a lower-case template name",
                ));
            }
            match self.load(&key, &key, &self.layout.template(&key)) {
                Ok(record) => records.push(record),
                // Deleted since the directory was listed.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// Applies an AIB PATCH document: `tags`, `identity`, `properties.distribute` and
    /// `properties.vmProfile` only. `tags`, `identity` and `distribute` replace the
    /// template's values (`null` removes tags or identity); `vmProfile` is merged with JSON
    /// merge-patch rules. `provisioningState` is `Updating` while the new template is
    /// written, then `Succeeded`.
    ///
    /// # Errors
    /// [`StoreError::PatchRefused`] naming any other field, or `properties.distribute` when
    /// an existing target (by `runOutputName`) is missing ("Deleting a distribution target
    /// is not allowed"); [`StoreError::Invalid`] with the parser's diagnostics when the
    /// patched template does not validate; as [`TemplateStore::get`] otherwise. A refused
    /// patch changes nothing.
    pub fn patch(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<TemplateRecord, StoreError> {
        let (key, paths) = self.paths(name)?;
        let _lock = FileLock::exclusive(&paths.mutation_lock)?;
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        let current = load_template(&paths, &key)?;
        let mut state = ResourceState::load(&paths)?;
        let mut patched = patch::apply(&current, patch, &paths.template_file())?;
        patched.secrets = current.secrets;
        let (value, secrets) = stored_json(&patched, &paths.template_file())?;

        state.provisioning_state = ProvisioningState::Updating;
        state.save(&paths)?;
        // Two files cannot be replaced at once. A crash between the writes leaves the new
        // secrets.json beside the old template.json, which matches it unless the patch moved
        // a string holding a secure value (only `distribute` and `vmProfile` can move).
        self::secrets::save(&paths.secrets_file(), secrets.as_ref())?;
        write_json(&paths.template_file(), &value)?;
        state.provisioning_state = ProvisioningState::Succeeded;
        state.provisioning_error = None;
        state.save(&paths)?;
        load_record(&paths, &key, run_active(&paths)?)
    }

    /// Deletes the template and its whole staging area; a later [`TemplateStore::create`]
    /// of the name starts clean.
    ///
    /// # Errors
    /// [`StoreError::RunActive`] while a run is active (running or canceling);
    /// [`StoreError::NotFound`]; [`StoreError::Io`]. A template whose files are corrupt can
    /// still be deleted.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        let (key, paths) = self.paths(name)?;
        let _lock = FileLock::exclusive(&paths.mutation_lock)?;
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        // Held until the directory is gone, so no run can start meanwhile.
        let Some(_run_lock) = FileLock::try_exclusive(&paths.run_lock)? else {
            return Err(StoreError::RunActive {
                name: name.to_owned(),
            });
        };
        // Shows if the process dies before the rename; skipped for an unreadable file.
        if let Ok(mut state) = ResourceState::load(&paths) {
            state.provisioning_state = ProvisioningState::Deleting;
            state.save(&paths)?;
        }
        let doomed = tmp_path(&self.layout.tmp(), &key, "deleting");
        fs::rename(&paths.dir, &doomed).map_err(|e| StoreError::io("move away", &paths.dir, e))?;
        sync_dir(&self.layout.templates())?;
        fs::remove_dir_all(&doomed).map_err(|e| StoreError::io("remove", &doomed, e))
    }

    /// Starts a run of the template: creates `staging/runs/<run-id>/` (ids sort by start
    /// time) and sets `lastRunStatus` to `Running`/`Queued` with `startTime` now. The
    /// returned guard holds the run lock until it is finished or dropped.
    ///
    /// # Errors
    /// [`StoreError::RunActive`] when another run (in any process) is active;
    /// as [`TemplateStore::get`] otherwise.
    pub fn begin_run(&self, name: &str) -> Result<RunGuard, StoreError> {
        let (key, paths) = self.paths(name)?;
        let _lock = FileLock::exclusive(&paths.mutation_lock)?;
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        let Some(run_lock) = FileLock::try_exclusive(&paths.run_lock)? else {
            return Err(StoreError::RunActive {
                name: name.to_owned(),
            });
        };
        let template = load_template(&paths, &key)?;
        let state = ResourceState::load(&paths)?;
        let name = template.name.clone().unwrap_or_else(|| name.to_owned());
        run::begin(&name, paths, template, state, run_lock)
    }

    /// Run outputs of the latest successful publishing to each target, sorted by
    /// `runOutputName`.
    ///
    /// # Errors
    /// As [`TemplateStore::get`].
    pub fn outputs(&self, name: &str) -> Result<Vec<RunOutput>, StoreError> {
        let (_, paths) = self.paths(name)?;
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        let _lock = FileLock::shared(&paths.mutation_lock)?;
        let dir = paths.outputs();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound && !exists(&paths.dir)? => {
                return Err(not_found(name))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let mut outputs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            // Skips temporary files of interrupted writes, which end in `.tmp`.
            let Some(stem) = file_name.strip_suffix(".json") else {
                continue;
            };
            let path = entry.path();
            let output: RunOutput = read_json(&path)?;
            if output.run_output_name != stem {
                return Err(StoreError::corrupt(
                    path,
                    format!(
                        "holds runOutputName '{}' but is named for '{stem}'",
                        output.run_output_name
                    ),
                ));
            }
            outputs.push(output);
        }
        outputs.sort_by(|a, b| a.run_output_name.cmp(&b.run_output_name));
        Ok(outputs)
    }

    /// Asks the active run, possibly in another process, to cancel by writing a marker it
    /// polls ([`RunGuard::cancel_requested`]). The run itself reports `Canceling` and then
    /// `Canceled` in `lastRunStatus`.
    ///
    /// # Errors
    /// [`StoreError::NoActiveRun`]; as [`TemplateStore::get`] otherwise.
    pub fn request_cancel(&self, name: &str) -> Result<(), StoreError> {
        let (_, paths) = self.paths(name)?;
        let _lock = FileLock::exclusive(&paths.mutation_lock)?;
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        if FileLock::try_exclusive(&paths.run_lock)?.is_some() {
            return Err(StoreError::NoActiveRun {
                name: name.to_owned(),
            });
        }
        let state = ResourceState::load(&paths)?;
        let Some(run_id) = state.last_run_id else {
            return Err(StoreError::corrupt(
                paths.resource_file(),
                "a run is active but no lastRunId is recorded",
            ));
        };
        let requested = OffsetDateTime::now_utc().to_string();
        write_atomic(
            &paths.run(&run_id).join(CANCEL_MARKER),
            requested.as_bytes(),
        )
    }

    fn paths(&self, name: &str) -> Result<(String, TemplatePaths), StoreError> {
        let key = key_of(name)?;
        let paths = self.layout.template(&key);
        Ok((key, paths))
    }

    /// Reads a record under the shared mutation lock. Checking existence first keeps
    /// lookups of unknown names from creating lock files.
    fn load(
        &self,
        name: &str,
        key: &str,
        paths: &TemplatePaths,
    ) -> Result<TemplateRecord, StoreError> {
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        let _lock = FileLock::shared(&paths.mutation_lock)?;
        if !exists(&paths.dir)? {
            return Err(not_found(name));
        }
        load_record(paths, key, run_active(paths)?)
    }
}

/// Whether the template's run lock is held. Called under the mutation lock, so the brief
/// probe cannot make a concurrent `begin_run` fail.
fn run_active(paths: &TemplatePaths) -> Result<bool, StoreError> {
    Ok(FileLock::try_shared(&paths.run_lock)?.is_none())
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists()
        .map_err(|e| StoreError::io("inspect", path, e))
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        name: name.to_owned(),
    }
}

fn default_state_dir_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let var = |name: &str| {
        var(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("IMAGEBUILDER_STATE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_STATE_HOME").filter(|d| d.is_absolute()) {
        return dir.join("imagebuilder");
    }
    if let Some(home) = var("HOME") {
        return home.join(".local").join("state").join("imagebuilder");
    }
    PathBuf::from(".imagebuilder-state")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn default_state_dir_precedence() {
        let all = [
            ("IMAGEBUILDER_STATE_DIR", "/srv/ib"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            default_state_dir_from(lookup(&all)),
            PathBuf::from("/srv/ib")
        );
        assert_eq!(
            default_state_dir_from(lookup(&all[1..])),
            PathBuf::from("/x/imagebuilder")
        );
        let relative_xdg = [("XDG_STATE_HOME", "x"), ("HOME", "/home/u")];
        assert_eq!(
            default_state_dir_from(lookup(&relative_xdg)),
            PathBuf::from("/home/u/.local/state/imagebuilder")
        );
        let empty = [("IMAGEBUILDER_STATE_DIR", ""), ("HOME", "/home/u")];
        assert_eq!(
            default_state_dir_from(lookup(&empty)),
            PathBuf::from("/home/u/.local/state/imagebuilder")
        );
        assert_eq!(
            default_state_dir_from(lookup(&[])),
            PathBuf::from(".imagebuilder-state")
        );
    }
}
