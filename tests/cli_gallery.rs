//! `imagebuilder convert` and `imagebuilder gallery ...` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GALLERY: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1";

/// Runs the CLI in `dir`; `gallery` commands get `dir/state` as their state directory.
fn run(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imagebuilder"));
    command.args(args).current_dir(dir);
    if args[0] == "gallery" {
        command.arg("--state-dir").arg(dir.join("state"));
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_gallery")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 20 MiB qcow2 with data at both ends, made by qemu-img.
fn qcow2(dir: &Path) -> PathBuf {
    let raw = dir.join("in.raw");
    let file = std::fs::File::create(&raw).unwrap();
    file.set_len(20 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(&[7u8; 8192], 0).unwrap();
    file.write_all_at(&[9u8; 4096], (20 << 20) - 4096).unwrap();
    let out = dir.join("in.qcow2");
    let status = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[test]
fn convert_writes_a_vhd_that_qemu_img_reads_as_the_same_disk() {
    let dir = fresh("convert");
    let input = qcow2(&dir);
    let out = run(&dir, &["convert", "in.qcow2", "out.vhd", "--format", "vhd"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("out.vhd: vhd, virtual size 20971520 bytes"),
        "{}",
        text(&out)
    );
    let compare = Command::new("qemu-img")
        .args(["compare", "-f", "qcow2", "-F", "vpc"])
        .arg(&input)
        .arg(dir.join("out.vhd"))
        .output()
        .unwrap();
    assert!(
        compare.status.success(),
        "{}",
        String::from_utf8_lossy(&compare.stdout)
    );
    assert_eq!(
        std::fs::metadata(dir.join("out.vhd")).unwrap().len(),
        (20 << 20) + 512
    );
    assert!(!text(&out).contains("sha256"), "{}", text(&out));

    let out = run(
        &dir,
        &[
            "convert",
            "in.qcow2",
            "again.vhd",
            "--format",
            "vhd",
            "--sha256",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sum = Command::new("sha256sum")
        .arg(dir.join("again.vhd"))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    let digest = sum.split_whitespace().next().unwrap();
    assert!(
        text(&out).contains(&format!("sha256 {digest}")),
        "{}",
        text(&out)
    );
}

#[test]
fn convert_names_the_file_it_cannot_read() {
    let dir = fresh("convert-bad");
    std::fs::write(dir.join("plain.raw"), [1u8; 4096]).unwrap();
    let out = run(
        &dir,
        &[
            "convert",
            "plain.raw",
            "out.qcow2",
            "-O",
            "qcow2",
            "-f",
            "qcow2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("plain.raw"), "{}", text(&out));
    assert!(!dir.join("out.qcow2").exists());
    let out = run(&dir, &["convert", "missing.qcow2", "out.raw", "-O", "raw"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("missing.qcow2"), "{}", text(&out));
}

#[test]
fn gallery_lifecycle_from_the_command_line() {
    let dir = fresh("lifecycle");
    let definition = format!("{GALLERY}/images/web");
    let out = run(
        &dir,
        &[
            "gallery",
            "define",
            &definition,
            "--publisher",
            "P",
            "--offer",
            "O",
            "--sku",
            "S",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("gallery create"), "{}", text(&out));
    assert!(run(
        &dir,
        &["gallery", "create", GALLERY, "--location", "eastus"]
    )
    .status
    .success());
    let again = run(&dir, &["gallery", "create", GALLERY]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    let out = run(
        &dir,
        &[
            "gallery",
            "define",
            &definition,
            "--publisher",
            "P",
            "--offer",
            "O",
            "--sku",
            "S",
            "--hyper-v-generation",
            "V2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&run(&dir, &["gallery", "list"])).contains(GALLERY));
    assert!(text(&run(&dir, &["gallery", "list", GALLERY])).contains("P:O:S\tLinux\tV2"));

    qcow2(&dir);
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "gallery",
            "publish",
            "in.qcow2",
            "--format",
            "qcow2",
            "--gallery-image-id",
            &definition,
            "--region",
            "eastus",
            "--region",
            "westus",
        ];
        args.extend_from_slice(extra);
        run(&dir, &args)
    };
    let out = publish(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{definition}/versions/1.0.0")
    );
    assert!(publish(&["--exclude-from-latest"]).status.success());
    let versions = text(&run(&dir, &["gallery", "versions", &definition]));
    let lines: Vec<&str> = versions.lines().collect();
    assert_eq!(lines.len(), 2, "{versions}");
    assert!(lines[0].starts_with("1.0.0\t") && lines[0].ends_with("eastus,westus"));
    assert!(lines[1].starts_with("1.0.1\t") && lines[1].ends_with("(excluded from latest)"));

    let shown = run(
        &dir,
        &["gallery", "show", &format!("{definition}/versions/1.0.0")],
    );
    let manifest: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let replica = manifest["replicas"][1]["uri"].as_str().unwrap().to_owned();
    let replica = PathBuf::from(replica.strip_prefix("file://").unwrap());
    assert!(
        replica.starts_with(dir.join("state/regions/westus")),
        "{}",
        replica.display()
    );
    assert!(replica.exists());

    let deleted = run(
        &dir,
        &[
            "gallery",
            "delete-version",
            &format!("{definition}/versions/1.0.0"),
        ],
    );
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(!replica.exists(), "the replicas go with the version");
    let versions = text(&run(&dir, &["gallery", "versions", &definition]));
    assert!(
        versions.starts_with("1.0.1\t") && versions.lines().count() == 1,
        "{versions}"
    );
    let missing = run(
        &dir,
        &["gallery", "show", &format!("{definition}/versions/1.0.0")],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("does not exist"));
}
