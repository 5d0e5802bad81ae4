//! Running a contender and measuring it: wall time, peak RSS (from `wait4`, or sampled from
//! `/proc` for a process tree), the moments its QEMU processes start and exit, and the time
//! each line of its output arrives.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a finished process went.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) status: ExitStatus,
    pub(crate) wall: Duration,
    /// Peak RSS in KiB of the process or of its largest waited-for descendant (`wait4`).
    pub(crate) max_rss_kib: u64,
}

/// Waits for `pid` with `wait4`, so the kernel tells us its peak RSS.
fn wait4(pid: u32) -> std::io::Result<(ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; the pid is our own child.
        let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
        if r == pid as i32 {
            return Ok((ExitStatus::from_raw(status), usage.ru_maxrss as u64));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Runs `cmd` to the end, its output discarded, and measures it.
pub(crate) fn run_quiet(cmd: &mut Command) -> std::io::Result<Outcome> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    // stderr is read on a thread so a chatty child never blocks on a full pipe.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    });
    let (status, max_rss_kib) = wait4(child.id())?;
    let wall = started.elapsed();
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "{cmd:?} failed ({status}): {}",
            stderr.trim()
        )));
    }
    Ok(Outcome {
        status,
        wall,
        max_rss_kib,
    })
}

/// One line of a contender's output and when it arrived (since the start).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) at: Duration,
    pub(crate) text: String,
}

/// What [`run_watched`] saw.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub(crate) outcome: Outcome,
    /// stdout lines, timestamped on arrival.
    pub(crate) lines: Vec<Line>,
    /// Each QEMU system emulator of the tree: first seen and gone, since the start.
    pub(crate) vms: Vec<(Duration, Option<Duration>)>,
    /// Peak RSS (VmHWM, KiB) of the top process itself, sampled.
    pub(crate) top_hwm_kib: u64,
    /// Peak RSS of the largest helper process (not the top one, not a VM), sampled.
    pub(crate) helper_hwm_kib: u64,
    /// Peak RSS of the largest VM process, sampled.
    #[allow(dead_code)]
    pub(crate) vm_hwm_kib: u64,
}

/// How often the process tree is sampled.
const POLL: Duration = Duration::from_millis(20);

/// Runs `cmd`, timestamping each stdout line and sampling its process tree (QEMU start and
/// exit, peak RSS per process) until it ends.
pub(crate) fn run_watched(cmd: &mut Command, log: &Path) -> std::io::Result<Watched> {
    let log_file = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file));
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let root = child.id();
    let stdout = child.stdout.take();
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(out) = stdout {
            for text in BufReader::new(out).lines().map_while(Result::ok) {
                lines.push(Line {
                    at: started.elapsed(),
                    text,
                });
            }
        }
        lines
    });
    let done = Arc::new(AtomicBool::new(false));
    let tree = Arc::new(Mutex::new(TreeState::default()));
    let sampler = {
        let (done, tree) = (done.clone(), tree.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                sample(
                    root,
                    started,
                    &mut tree.lock().unwrap_or_else(|e| e.into_inner()),
                );
                std::thread::sleep(POLL);
            }
        })
    };
    let (status, max_rss_kib) = wait4(root)?;
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let lines = lines.join().unwrap_or_default();
    let tree = tree.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut vms: Vec<_> = tree
        .procs
        .values()
        .filter(|p| p.vm)
        .map(|p| (p.first, p.gone.or(Some(wall))))
        .collect();
    vms.sort_by_key(|v| v.0);
    let hwm = |f: &dyn Fn(&Proc) -> bool| {
        tree.procs
            .values()
            .filter(|p| f(p))
            .map(|p| p.hwm)
            .max()
            .unwrap_or(0)
    };
    Ok(Watched {
        outcome: Outcome {
            status,
            wall,
            max_rss_kib,
        },
        lines,
        vms,
        top_hwm_kib: hwm(&|p| p.pid == root),
        helper_hwm_kib: hwm(&|p| p.pid != root && !p.vm),
        vm_hwm_kib: hwm(&|p| p.vm),
    })
}

#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    vm: bool,
    first: Duration,
    gone: Option<Duration>,
    hwm: u64,
}

#[derive(Debug, Clone, Default)]
struct TreeState {
    procs: HashMap<u32, Proc>,
}

/// The processes under `root` (itself included), found through each thread's `children`
/// file, so only the tree is read, not all of `/proc`.
fn tree_pids(root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let pid = found[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            found.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    found
}

/// One look at the tree under `root`: new processes, their peak RSS, exits.
fn sample(root: u32, started: Instant, state: &mut TreeState) {
    let now = started.elapsed();
    let mut alive = Vec::new();
    for pid in tree_pids(root) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        // A zombie has exited: it counts as gone even before its parent reaps it.
        if status.is_empty() || status.contains("State:\tZ") {
            continue;
        }
        alive.push(pid);
        let pid = &pid;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let hwm = field("VmHWM:")
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let vm = field("Name:").is_some_and(|n| n.starts_with("qemu-system"));
        let proc = state.procs.entry(*pid).or_insert(Proc {
            pid: *pid,
            vm,
            first: now,
            gone: None,
            hwm: 0,
        });
        proc.vm |= vm;
        proc.hwm = proc.hwm.max(hwm);
        proc.gone = None;
    }
    for proc in state.procs.values_mut() {
        if proc.gone.is_none() && !alive.contains(&proc.pid) {
            proc.gone = Some(now);
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Flushes dirty pages so one contender's write-back never lands in the next one's time.
pub(crate) fn settle() {
    let _ = Command::new("sync").status();
}
