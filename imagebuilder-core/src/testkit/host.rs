//! Contract checks for build hosts.

use std::path::PathBuf;

use crate::host::{
    BuildHost, BuildVm, ExecRequest, OutputLine, OutputStream, ProvisionOptions, RestartOptions,
    VmPurpose,
};
use crate::source::BaseDisk;

/// What a host needs to run the checks: a bootable base disk and a scratch directory.
#[derive(Debug, Clone)]
pub struct HostTestContext {
    /// A disk the host can boot whose guest has a POSIX shell.
    pub base_disk: BaseDisk,
    /// A directory the checks may use; each check makes a subdirectory.
    pub work_dir: PathBuf,
}

/// Collects a command's output lines.
#[derive(Default)]
struct Captured {
    lines: std::sync::Mutex<Vec<(OutputStream, String)>>,
}

impl Captured {
    fn sink(&self) -> impl Fn(OutputLine<'_>) + Send + Sync + '_ {
        move |line: OutputLine<'_>| {
            self.lines
                .lock()
                .unwrap()
                .push((line.stream, line.text.to_owned()));
        }
    }

    fn take(&self) -> Vec<(OutputStream, String)> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

async fn provision(host: &dyn BuildHost, cx: &HostTestContext, check: &str) -> Box<dyn BuildVm> {
    let work_dir = cx.work_dir.join(check);
    std::fs::create_dir_all(&work_dir).expect("the check's work dir can be created");
    let console = std::sync::Arc::new(|_: OutputLine<'_>| {});
    let options = ProvisionOptions {
        vm_id: format!("testkit-{check}-{}", std::process::id()),
        purpose: VmPurpose::Build,
        base_disk: cx.base_disk.clone(),
        vm_profile: Default::default(),
        work_dir,
        console,
    };
    match host.provision(options).await {
        Ok(vm) => vm,
        Err(e) => panic!(
            "{check}: {} failed to provision: {}",
            host.name(),
            crate::error_chain(&e)
        ),
    }
}

async fn destroy(vm: Box<dyn BuildVm>, check: &str) {
    if let Err(e) = vm.destroy().await {
        panic!("{check}: destroy failed: {}", crate::error_chain(&e));
    }
}

/// `exec` returns the command's exit code: 0 for `true`, 3 for `exit 3`.
pub async fn exec_reports_exit_codes(host: &dyn BuildHost, cx: &HostTestContext) {
    let vm = provision(host, cx, "exec_reports_exit_codes").await;
    let ignore = |_: OutputLine<'_>| {};
    for (command, expected) in [("true", 0), ("exit 3", 3), ("false", 1)] {
        let result = vm.guest().exec(&ExecRequest::new(command), &ignore).await;
        let code = result
            .unwrap_or_else(|e| panic!("exec `{command}` failed: {}", crate::error_chain(&e)))
            .exit_code;
        assert_eq!(code, expected, "exit code of `{command}`");
    }
    destroy(vm, "exec_reports_exit_codes").await;
}

/// `exec` streams stdout and stderr lines to the sink, each on its stream.
pub async fn exec_streams_output(host: &dyn BuildHost, cx: &HostTestContext) {
    let vm = provision(host, cx, "exec_streams_output").await;
    let captured = Captured::default();
    let sink = captured.sink();
    vm.guest()
        .exec(&ExecRequest::new("echo hello"), &sink)
        .await
        .expect("exec echo");
    vm.guest()
        .exec(&ExecRequest::new("echo oops >&2"), &sink)
        .await
        .expect("exec echo >&2");
    assert_eq!(
        captured.take(),
        [
            (OutputStream::Stdout, "hello".to_owned()),
            (OutputStream::Stderr, "oops".to_owned())
        ],
        "output lines and their streams"
    );
    destroy(vm, "exec_streams_output").await;
}

/// A file uploaded to the guest reads back unchanged.
pub async fn upload_reads_back(host: &dyn BuildHost, cx: &HostTestContext) {
    let vm = provision(host, cx, "upload_reads_back").await;
    let local = cx.work_dir.join("upload_reads_back").join("payload.txt");
    std::fs::write(&local, "first line\nsecond line\n").expect("write the payload");
    vm.guest()
        .upload(&local, "/tmp/testkit-payload.txt")
        .await
        .expect("upload");
    let captured = Captured::default();
    let result = vm
        .guest()
        .exec(
            &ExecRequest::new("cat /tmp/testkit-payload.txt"),
            &captured.sink(),
        )
        .await
        .expect("cat");
    assert_eq!(result.exit_code, 0, "cat of the uploaded file");
    let lines: Vec<String> = captured.take().into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, ["first line", "second line"], "uploaded content");
    destroy(vm, "upload_reads_back").await;
}

/// After shutdown, capture writes one self-contained disk file in the base disk's format,
/// and the base disk is unchanged.
pub async fn capture_writes_a_disk_and_keeps_the_base(host: &dyn BuildHost, cx: &HostTestContext) {
    let base_path = local_path(&cx.base_disk.location);
    let before = base_path
        .as_ref()
        .map(|p| std::fs::read(p).expect("read the base disk"));
    let mut vm = provision(host, cx, "capture_writes_a_disk").await;
    vm.guest()
        .exec(
            &ExecRequest::new("echo changed > /tmp/marker"),
            &|_: OutputLine<'_>| {},
        )
        .await
        .expect("exec");
    vm.shutdown().await.expect("shutdown");
    let destination = cx
        .work_dir
        .join("capture_writes_a_disk")
        .join("capture.img");
    let disk = vm.capture(&destination).await.expect("capture");
    assert_eq!(disk.path, destination, "capture path");
    assert_eq!(
        disk.format, cx.base_disk.format,
        "capture keeps the base format"
    );
    let size = std::fs::metadata(&destination)
        .expect("the capture exists")
        .len();
    assert!(size > 0, "the capture is not empty");
    destroy(vm, "capture_writes_a_disk").await;
    if let (Some(path), Some(before)) = (base_path, before) {
        assert!(
            std::fs::read(path).expect("read the base disk") == before,
            "the base disk was modified"
        );
    }
}

/// A restarted guest answers commands again.
pub async fn restart_comes_back(host: &dyn BuildHost, cx: &HostTestContext) {
    if !host.capabilities().restart {
        return;
    }
    let vm = provision(host, cx, "restart_comes_back").await;
    let options = RestartOptions {
        command: String::new(),
        check_command: String::new(),
        timeout: std::time::Duration::from_secs(300),
    };
    vm.guest().restart(&options).await.expect("restart");
    let result = vm
        .guest()
        .exec(&ExecRequest::new("true"), &|_: OutputLine<'_>| {})
        .await
        .expect("exec after restart");
    assert_eq!(result.exit_code, 0, "exit code after restart");
    destroy(vm, "restart_comes_back").await;
}

fn local_path(location: &str) -> Option<PathBuf> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    path.starts_with('/')
        .then(|| PathBuf::from(path))
        .filter(|p| p.exists())
}
