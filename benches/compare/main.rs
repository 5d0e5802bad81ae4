//! The comparison harness of issue #7: imagebuilder side by side with Packer's QEMU builder
//! and qemu-img on this machine, contenders alternated, medians and ratios from one run.
//!
//! Run it with `bash scripts/bench.sh` (installs Packer and the host tools, builds the fixture
//! image, then runs `cargo bench --bench compare`). Options after `--`:
//!
//! | option | meaning |
//! |---|---|
//! | `--quick` | fewer repetitions (e2e 1, the others 3): a smoke test, not figures to quote |
//! | `--reps N` | repetitions of every contender (default 5) |
//! | `--only e2e,convert,replicate` | sections to run (after-build figures come from e2e) |
//! | `--keep` | keep each run's files under the data directory |
//!
//! Environment: `IB_BENCH_FIXTURE` (the Gen1 fixture qcow2; default
//! `~/.cache/imagebuilder/fixture-images/debian-12-gen1.qcow2`), `IB_BENCH_DATA` (scratch,
//! default `/tmp/imagebuilder-bench`; needs about 6 GiB).
//!
//! `cargo test` never runs this: without cargo bench's `--bench` flag it only says so.

// A benchmark program, not an API: its items are documented where it helps the reader.
#![allow(missing_docs)]

mod convert;
mod e2e;
mod measure;
mod replicate;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use measure::median;

/// The VM shape every end-to-end contender gets: `Standard_B2s` is 2 vCPUs and 4 GiB.
pub(crate) const VM_SIZE: &str = "Standard_B2s";
pub(crate) const VM_CPUS: u32 = 2;
pub(crate) const VM_MEMORY_MIB: u32 = 4096;

/// What every section needs.
pub(crate) struct Setup {
    pub(crate) imagebuilder: PathBuf,
    pub(crate) fixture: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) keep: bool,
    /// Another imagebuilder binary (`IB_BENCH_BEFORE`, say one built before a change): its
    /// conversion and replication run alternated with ours, for before/after ratios.
    pub(crate) before: Option<PathBuf>,
}

struct Options {
    reps_e2e: usize,
    reps: usize,
    sections: Vec<String>,
    keep: bool,
}

fn options() -> Result<Option<Options>, String> {
    let mut args = std::env::args().skip(1);
    let mut bench = false;
    let mut quick = false;
    let mut reps = None;
    let mut sections = vec!["e2e".to_owned(), "convert".into(), "replicate".into()];
    let mut keep = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => bench = true,
            "--quick" => quick = true,
            "--keep" => keep = true,
            "--reps" => {
                reps = Some(
                    args.next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--reps takes a positive number")?,
                )
            }
            "--only" => {
                sections = args
                    .next()
                    .ok_or("--only takes a list")?
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !bench {
        return Ok(None);
    }
    let (reps_e2e, reps) = match (reps, quick) {
        (Some(n), _) => (n, n),
        (None, true) => (1, 3),
        (None, false) => (5, 5),
    };
    Ok(Some(Options {
        reps_e2e,
        reps,
        sections,
        keep,
    }))
}

fn main() {
    let options = match options() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("compare: a benchmark; run it with `bash scripts/bench.sh` or `cargo bench --bench compare`");
            return;
        }
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options) {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

fn run(options: &Options) -> Result<(), String> {
    let setup = Setup {
        imagebuilder: PathBuf::from(env!("CARGO_BIN_EXE_imagebuilder")),
        fixture: std::env::var_os("IB_BENCH_FIXTURE").map_or_else(
            || home().join(".cache/imagebuilder/fixture-images/debian-12-gen1.qcow2"),
            PathBuf::from,
        ),
        data: std::env::var_os("IB_BENCH_DATA")
            .map_or_else(|| PathBuf::from("/tmp/imagebuilder-bench"), PathBuf::from),
        keep: options.keep,
        before: std::env::var_os("IB_BENCH_BEFORE").map(PathBuf::from),
    };
    std::fs::create_dir_all(&setup.data).map_err(|e| e.to_string())?;
    let wants = |s: &str| options.sections.iter().any(|x| x == s);
    let mut tools = vec!["qemu-img", "cp", "sync"];
    if wants("e2e") {
        tools.extend([
            "qemu-system-x86_64",
            "packer",
            "ssh",
            "scp",
            "ssh-keygen",
            "mkfs.vfat",
            "mcopy",
        ]);
        if !setup.fixture.exists() {
            return Err(format!(
                "no fixture image at {} (scripts/bench.sh builds it; or set IB_BENCH_FIXTURE)",
                setup.fixture.display()
            ));
        }
    }
    for tool in tools {
        if !std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success())
        {
            return Err(format!("{tool} is missing (scripts/bench.sh installs it)"));
        }
    }

    let mut report = String::new();
    machine(&mut report);
    let mut results = serde_json::Map::new();
    if wants("e2e") {
        e2e_section(&setup, options.reps_e2e, &mut report, &mut results)?;
    }
    if wants("convert") || wants("replicate") {
        let cases = convert::cases(&setup)?;
        if wants("convert") {
            convert_section(&setup, &cases, options.reps, &mut report, &mut results)?;
        }
        if wants("replicate") {
            replicate_section(&setup, &cases[0], options.reps, &mut report, &mut results)?;
        }
    }
    println!("{report}");
    let json_path = setup.data.join("results.json");
    let _ = std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    );
    let report_path = setup.data.join("report.md");
    let _ = std::fs::write(&report_path, &report);
    eprintln!(
        "compare: report in {}, figures in {}",
        report_path.display(),
        json_path.display()
    );
    Ok(())
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine(out: &mut String) {
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(
        out,
        "- CPU: {} x {}",
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    );
    let _ = writeln!(
        out,
        "- memory: {} MiB",
        sh("awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo")
    );
    let kvm = if sh("grep -c -w -E 'vmx|svm' /proc/cpuinfo") == "0" {
        "TCG (no vmx/svm: /dev/kvm unusable)"
    } else {
        "TCG (forced for every contender)"
    };
    let _ = writeln!(out, "- accelerator: {kvm}");
    let _ = writeln!(
        out,
        "- load at start: {}",
        sh("cut -d' ' -f1-3 /proc/loadavg")
    );
    let _ = writeln!(
        out,
        "- versions: {}; {}; {}",
        sh("qemu-system-x86_64 --version | head -1"),
        sh("qemu-img --version | head -1"),
        sh("packer version | head -1")
    );
    let _ = writeln!(out);
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.2}–{max:.2}")
}

// --- sections ---------------------------------------------------------------------------------

fn e2e_section(
    setup: &Setup,
    reps: usize,
    out: &mut String,
    results: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    use e2e::Contender;
    let inputs = e2e::inputs(setup)?;
    let mut runs: BTreeMap<usize, Vec<e2e::RunFigures>> = BTreeMap::new();
    for round in 0..reps {
        // Rotate the order each round, so no contender always runs after the same one.
        for i in 0..Contender::ALL.len() {
            let who = Contender::ALL[(i + round) % Contender::ALL.len()];
            eprintln!("e2e: round {}/{reps}: {}", round + 1, who.name());
            let figures = e2e::run(setup, &inputs, who, round)?;
            eprintln!("e2e:   {:.1} s", figures.wall);
            runs.entry(who as usize).or_default().push(figures);
        }
    }
    let get = |who: Contender| runs.get(&(who as usize)).cloned().unwrap_or_default();
    let walls = |who: Contender| get(who).iter().map(|r| r.wall).collect::<Vec<_>>();
    let skilled = median(&walls(Contender::PackerSkilled));
    let _ = writeln!(out, "## End to end ({reps} runs each, alternated)\n");
    let _ = writeln!(
        out,
        "Same fixture (Debian 12 Gen1), {VM_CPUS} vCPUs, {VM_MEMORY_MIB} MiB, TCG; Shell, File (1 MiB), Shell, restart, Shell, generalize. \
imagebuilder writes a qcow2 **and** a fixed VHD; Packer writes the qcow2, and the VHD column adds the `qemu-img convert` a Packer user runs next.\n"
    );
    let _ = writeln!(
        out,
        "| contender | median wall s | range s | ratio to Packer skilled | incl. VHD s | builder peak RSS MiB | helper peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let mut json = serde_json::Map::new();
    for who in Contender::ALL {
        let figures = get(who);
        let w = walls(who);
        let m = median(&w);
        let with_vhd = median(
            &figures
                .iter()
                .map(|r| r.wall + r.vhd_convert.unwrap_or(0.0))
                .collect::<Vec<_>>(),
        );
        let rss = median(
            &figures
                .iter()
                .map(|r| r.builder_rss_mib)
                .collect::<Vec<_>>(),
        );
        let helper = median(&figures.iter().map(|r| r.helper_rss_mib).collect::<Vec<_>>());
        let (vhd, rss_s, helper_s) = if who == Contender::Bare {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{with_vhd:.2}"),
                format!("{rss:.1}"),
                format!("{helper:.1}"),
            )
        };
        let _ = writeln!(
            out,
            "| {} | {m:.2} | {} | {} | {vhd} | {rss_s} | {helper_s} |",
            who.name(),
            range(&w),
            ratio(m, skilled),
        );
        json.insert(
            format!("{who:?}"),
            serde_json::json!({"walls": w, "median": m, "withVhd": with_vhd, "builderRssMiB": rss, "helperRssMiB": helper}),
        );
    }
    // Overhead as the issue defines it: our wall minus the guest's bare boot to SSH minus
    // the time the commands themselves take (the restart and power-off are guest time too).
    let ours = median(&walls(Contender::Ours));
    let bare = get(Contender::Bare);
    let bare_phase = |name: &str| {
        median(
            &bare
                .iter()
                .filter_map(|r| {
                    r.phases
                        .iter()
                        .find(|(n, _)| n.starts_with(name))
                        .map(|p| p.1)
                })
                .collect::<Vec<_>>(),
        )
    };
    let guest = bare_phase("boot to SSH")
        + bare_phase("commands")
        + bare_phase("restart")
        + bare_phase("power-off");
    let overhead = ours - guest;
    let _ = writeln!(
        out,
        "\nimagebuilder's own overhead: {ours:.2} s wall − {guest:.2} s guest time (bare boot to SSH {:.2} + commands {:.2} + restart {:.2} + power-off {:.2}) = **{overhead:.2} s, {:.0}% of its wall time**.\n",
        bare_phase("boot to SSH"),
        bare_phase("commands"),
        bare_phase("restart"),
        bare_phase("power-off"),
        100.0 * overhead / ours
    );
    json.insert(
        "overhead".into(),
        serde_json::json!({"seconds": overhead, "share": overhead / ours, "guestSeconds": guest}),
    );
    for who in Contender::ALL {
        let figures = get(who);
        let Some(first) = figures.first() else {
            continue;
        };
        let _ = writeln!(out, "Phases of {} (medians):\n", who.name());
        let _ = writeln!(out, "| phase | s |\n|---|---:|");
        for (i, (name, _)) in first.phases.iter().enumerate() {
            let m = median(
                &figures
                    .iter()
                    .filter_map(|r| r.phases.get(i).map(|p| p.1))
                    .collect::<Vec<_>>(),
            );
            let _ = writeln!(out, "| {name} | {m:.2} |");
        }
        let _ = writeln!(out);
    }
    // After the build: from the VM's exit (the guest's power-off) to every output written.
    let after = |who: Contender| {
        median(
            &get(who)
                .iter()
                .filter_map(|r| r.after_build)
                .collect::<Vec<_>>(),
        )
    };
    let (a_ours, a_default, a_skilled) = (
        after(Contender::Ours),
        after(Contender::PackerDefault),
        after(Contender::PackerSkilled),
    );
    let _ = writeln!(
        out,
        "## After the build: power-off to qcow2 + fixed VHD written (from the e2e runs)\n"
    );
    let _ = writeln!(
        out,
        "| contender | median s | ratio to Packer defaults + qemu-img |\n|---|---:|---:|"
    );
    let _ = writeln!(
        out,
        "| imagebuilder (capture, one pass to both outputs) | {a_ours:.2} | {} |",
        ratio(a_ours, a_default)
    );
    let _ = writeln!(
        out,
        "| Packer defaults (final convert) + qemu-img VHD | {a_default:.2} | 1.00 |"
    );
    let _ = writeln!(
        out,
        "| Packer skilled (no compaction) + qemu-img VHD | {a_skilled:.2} | {} |\n",
        ratio(a_skilled, a_default)
    );
    json.insert(
        "afterBuild".into(),
        serde_json::json!({"ours": a_ours, "packerDefault": a_default, "packerSkilled": a_skilled}),
    );
    results.insert("e2e".into(), serde_json::Value::Object(json));
    Ok(())
}

fn convert_section(
    setup: &Setup,
    cases: &[convert::Case],
    reps: usize,
    out: &mut String,
    results: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    use convert::Tool;
    let _ = writeln!(out, "## Conversion to a fixed VHD ({reps} runs each, alternated; outputs flushed and deleted between runs)\n");
    let _ = writeln!(
        out,
        "| input | contender | median wall s | + fsync s | peak RSS MiB | ratio to floor | ratio to qemu-img | ratio to floor, both fsynced |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
    let mut json = serde_json::Map::new();
    for case in cases {
        let mut figures: BTreeMap<usize, Vec<convert::Figures>> = BTreeMap::new();
        let tools = Tool::all(setup.before.is_some());
        for round in 0..reps {
            for i in 0..tools.len() {
                let tool = tools[(i + round) % tools.len()];
                let f = convert::run(setup, case, tool)?;
                eprintln!("convert: {}: {}: {:.2} s", case.name, tool.name(), f.wall);
                figures.entry(tool as usize).or_default().push(f);
            }
        }
        let med = |tool: Tool, f: &dyn Fn(&convert::Figures) -> f64| {
            median(&figures[&(tool as usize)].iter().map(f).collect::<Vec<_>>())
        };
        let floor = med(Tool::Floor, &|f| f.wall);
        let floor_synced = med(Tool::Floor, &|f| f.wall + f.fsync);
        let qemu = med(Tool::QemuImg, &|f| f.wall);
        let mut case_json = serde_json::Map::new();
        for tool in tools {
            let wall = med(tool, &|f| f.wall);
            let synced = med(tool, &|f| f.wall + f.fsync);
            let rss = med(tool, &|f| f.rss_mib);
            let _ = writeln!(
                out,
                "| {} | {} | {wall:.2} | {:.2} | {rss:.1} | {} | {} | {} |",
                case.name,
                tool.name(),
                med(tool, &|f| f.fsync),
                ratio(wall, floor),
                ratio(wall, qemu),
                ratio(synced, floor_synced),
            );
            case_json.insert(
                format!("{tool:?}"),
                serde_json::json!({
                    "walls": figures[&(tool as usize)].iter().map(|f| f.wall).collect::<Vec<_>>(),
                    "median": wall, "synced": synced, "rssMiB": rss}),
            );
        }
        json.insert(case.name.into(), serde_json::Value::Object(case_json));
    }
    let _ = writeln!(out);
    results.insert("convert".into(), serde_json::Value::Object(json));
    Ok(())
}

fn replicate_section(
    setup: &Setup,
    case: &convert::Case,
    reps: usize,
    out: &mut String,
    results: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let gallery = replicate::gallery(setup, case.input.clone())?;
    // (binary, label, regions), alternated.
    let mut contenders = vec![
        (setup.imagebuilder.clone(), "imagebuilder", 1),
        (setup.imagebuilder.clone(), "imagebuilder", 3),
    ];
    if let Some(before) = &setup.before {
        contenders.push((before.clone(), "before", 1));
        contenders.push((before.clone(), "before", 3));
    }
    let mut figures: BTreeMap<usize, Vec<replicate::Figures>> = BTreeMap::new();
    let mut n = 0;
    for round in 0..reps {
        for i in 0..contenders.len() {
            let k = (i + round) % contenders.len();
            let (bin, label, regions) = &contenders[k];
            n += 1;
            let f = replicate::run(bin, &gallery, *regions, n)?;
            eprintln!("replicate: {label}: {regions} region(s): {:.2} s", f.wall);
            figures.entry(k).or_default().push(f);
        }
    }
    let med = |k: usize, f: &dyn Fn(&replicate::Figures) -> f64| {
        median(&figures[&k].iter().map(f).collect::<Vec<_>>())
    };
    let one = med(0, &|f| f.wall);
    let _ = writeln!(out, "## Replication: one gallery version ({}, qcow2 replicas on local region stores; {reps} runs each, alternated)\n", case.name);
    let _ = writeln!(out, "| binary | regions | median wall s | range s | peak RSS MiB | ratio to its 1 region | ratio to imagebuilder, 1 region |\n|---|---|---:|---:|---:|---:|---:|");
    let mut json = serde_json::Map::new();
    for (k, (_, label, regions)) in contenders.iter().enumerate() {
        let walls: Vec<f64> = figures[&k].iter().map(|f| f.wall).collect();
        let m = med(k, &|f| f.wall);
        let own_one = med(k - k % 2, &|f| f.wall);
        let _ = writeln!(
            out,
            "| {label} | {regions} | {m:.2} | {} | {:.1} | {} | {} |",
            range(&walls),
            med(k, &|f| f.rss_mib),
            ratio(m, own_one),
            ratio(m, one)
        );
        json.insert(
            format!("{label}-{regions}"),
            serde_json::json!({"walls": walls, "median": m}),
        );
    }
    let _ = writeln!(out);
    let _ = std::fs::remove_dir_all(setup.data.join("replicate"));
    results.insert("replicate".into(), serde_json::Value::Object(json));
    Ok(())
}

/// Pseudo-random, never-zero bytes (xorshift): incompressible data that no zero scan skips.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&(state | 0x0101_0101_0101_0101).to_le_bytes());
    }
    out.truncate(len);
    out
}
