//! A gallery publish killed with SIGKILL at random points never leaves a listed partial
//! version; publishing the same version again completes it, and the next publish of any
//! other version rolls it back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imagebuilder::dist::registry::galleries_in;

const DEFINITION: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1/images/web";

fn imagebuilder(state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imagebuilder"));
    command.args(args).arg("--state-dir").arg(state);
    command
}

fn ok(mut command: Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

/// Every listed version is whole: each replica exists and has the recorded sha256. Versions
/// in `checked` were verified before (a listed version never changes) and are skipped.
fn assert_listed_versions_are_complete(state: &Path, checked: &mut Vec<String>) -> Vec<String> {
    let versions = galleries_in(state).versions(DEFINITION).unwrap();
    for manifest in &versions {
        if checked.contains(&manifest.version) {
            continue;
        }
        assert_eq!(manifest.replicas.len(), 3, "{manifest:?}");
        for replica in &manifest.replicas {
            let file = PathBuf::from(replica.uri.strip_prefix("file://").unwrap());
            assert!(
                file.exists(),
                "version {} lists a missing replica {}",
                manifest.version,
                file.display()
            );
            assert_eq!(
                sha256(&file),
                replica.sha256,
                "version {} replica {}",
                manifest.version,
                replica.region
            );
        }
        checked.push(manifest.version.clone());
    }
    versions.into_iter().map(|m| m.version).collect()
}

/// A small deterministic generator; the seed is printed so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn killed_publishes_never_list_a_partial_version_and_a_rerun_completes() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gallery_crash");
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let env = dir.join("env.json");
    let regions: Vec<String> = ["r1", "r2", "r3"]
        .iter()
        .map(|r| format!("\"{r}\": \"file://{}/regions/{r}\"", dir.display()))
        .collect();
    std::fs::write(&env, format!("{{\"regions\": {{{}}}}}", regions.join(", "))).unwrap();
    // Dense data, so that writing the three replicas takes a while to interrupt.
    let disk = dir.join("disk.raw");
    let data: Vec<u8> = (0..(24u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&disk, data).unwrap();
    let gallery = DEFINITION.rsplit_once("/images/").unwrap().0;
    ok(imagebuilder(
        &state,
        &["gallery", "create", gallery, "--location", "r1"],
    ));
    ok(imagebuilder(
        &state,
        &[
            "gallery",
            "define",
            DEFINITION,
            "--publisher",
            "P",
            "--offer",
            "O",
            "--sku",
            "S",
        ],
    ));
    let publish = |version: &str| {
        let mut command = imagebuilder(&state, &["gallery", "publish"]);
        command
            .arg(&disk)
            .args([
                "--format", "raw", "--region", "r1", "--region", "r2", "--region", "r3",
            ])
            .arg("--gallery-image-id")
            .arg(format!("{DEFINITION}/versions/{version}"))
            .arg("--env")
            .arg(&env);
        command
    };

    let started = Instant::now();
    ok(publish("0.0.1"));
    let whole = started.elapsed().as_millis() as u64;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("one publish takes {whole} ms; seed {seed}");
    let mut rng = Lcg(seed);
    let mut checked = Vec::new();
    for i in 0..10 {
        let version = format!("1.0.{i}");
        let mut child = publish(&version)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(whole + whole / 4)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let listed = assert_listed_versions_are_complete(&state, &mut checked);
        let rerun = publish(&version).output().unwrap();
        if !rerun.status.success() {
            let stderr = String::from_utf8_lossy(&rerun.stderr);
            assert!(
                stderr.contains("already exists") && listed.contains(&version),
                "rerun of {version} failed though the version was not complete: {stderr}"
            );
        }
        let listed = assert_listed_versions_are_complete(&state, &mut checked);
        assert!(
            listed.contains(&version),
            "{version} is complete after the rerun: {listed:?}"
        );
    }
    // An automatic version after all that goes above every complete one.
    let out = ok({
        let mut command = imagebuilder(&state, &["gallery", "publish"]);
        command
            .arg(&disk)
            .args([
                "--format",
                "raw",
                "--region",
                "r2",
                "--gallery-image-id",
                DEFINITION,
                "--env",
            ])
            .arg(&env);
        command
    });
    assert!(out.trim().ends_with("/versions/1.0.10"), "{out}");

    // Publishes killed and never rerun are rolled back by the next publish of the definition:
    // afterwards every replica file on disk belongs to a listed version, and no claim is left.
    for i in 0..5 {
        let mut child = publish(&format!("2.0.{i}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(whole + whole / 4)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
    }
    ok(publish("3.0.0"));
    let listed: Vec<String> = galleries_in(&state)
        .versions(DEFINITION)
        .unwrap()
        .iter()
        .flat_map(|m| m.replicas.iter().map(|r| r.uri.clone()))
        .collect();
    let on_disk = files_named(&dir.join("regions"), "disk.qcow2");
    for file in &on_disk {
        let uri = format!("file://{}", file.display());
        assert!(
            listed.contains(&uri),
            "{} is a replica of no listed version (seed {seed})",
            file.display()
        );
    }
    let pending = files_ending(&state, ".pending");
    assert!(pending.is_empty(), "claims left behind: {pending:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file under `dir` (recursively) whose name is `name`.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    files_matching(dir, &|file: &str| file == name)
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    files_matching(dir, &|file: &str| file.ends_with(suffix))
}

fn files_matching(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_matching(&path, wanted));
        } else if wanted(&entry.file_name().to_string_lossy()) {
            found.push(path);
        }
    }
    found
}
