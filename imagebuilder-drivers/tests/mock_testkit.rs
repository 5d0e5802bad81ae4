//! The mock host passes every build-host contract check.
#![cfg(feature = "mock")]

use std::path::PathBuf;

use imagebuilder_core::source::BaseDisk;
use imagebuilder_core::template::model::{DiskFormat, HyperVGeneration, OsType, SecurityType};
use imagebuilder_core::testkit::host::{self, HostTestContext};
use imagebuilder_drivers::mock::MockBuildHost;

fn context(check: &str) -> HostTestContext {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("mock_testkit")
        .join(check);
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.raw");
    std::fs::write(&base, b"a base disk").unwrap();
    HostTestContext {
        base_disk: BaseDisk {
            location: base.display().to_string(),
            format: DiskFormat::Raw,
            virtual_size: 1 << 30,
            sha256: None,
            os_type: OsType::Linux,
            hyper_v_generation: HyperVGeneration::V1,
            security_type: SecurityType::Standard,
            exact_version: None,
        },
        work_dir: dir,
    }
}

#[tokio::test]
async fn exec_reports_exit_codes() {
    let mock = MockBuildHost::new();
    host::exec_reports_exit_codes(&mock, &context("exit_codes")).await;
    assert!(mock.live_vms().is_empty());
}

#[tokio::test]
async fn exec_streams_output() {
    let mock = MockBuildHost::new();
    host::exec_streams_output(&mock, &context("streams")).await;
    assert!(mock.live_vms().is_empty());
}

#[tokio::test]
async fn upload_reads_back() {
    let mock = MockBuildHost::new();
    host::upload_reads_back(&mock, &context("upload")).await;
    assert!(mock.live_vms().is_empty());
}

#[tokio::test]
async fn capture_writes_a_disk_and_keeps_the_base() {
    let mock = MockBuildHost::new();
    host::capture_writes_a_disk_and_keeps_the_base(&mock, &context("capture")).await;
    assert!(mock.live_vms().is_empty());
}

#[tokio::test]
async fn restart_comes_back() {
    let mock = MockBuildHost::new();
    host::restart_comes_back(&mock, &context("restart")).await;
    assert!(mock.live_vms().is_empty());
}
