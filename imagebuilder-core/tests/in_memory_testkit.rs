//! The in-memory distributor passes every distributor contract check.
#![cfg(feature = "testkit")]

use std::path::PathBuf;

use imagebuilder_core::distribute::InMemoryTargets;
use imagebuilder_core::testkit::distributor;

fn dir(check: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("in_memory_testkit")
        .join(check)
}

#[tokio::test]
async fn publishes_and_keeps_the_capture() {
    let targets = InMemoryTargets::new();
    distributor::publishes_and_keeps_the_capture(&targets.distributor("out"), &dir("publishes"))
        .await;
    assert_eq!(targets.names(), ["out"]);
}

#[tokio::test]
async fn reports_progress_up_to_the_total() {
    let targets = InMemoryTargets::new();
    distributor::reports_progress_up_to_the_total(&targets.distributor("out"), &dir("progress"))
        .await;
}

#[tokio::test]
async fn publishes_again_in_a_later_run() {
    let targets = InMemoryTargets::new();
    distributor::publishes_again_in_a_later_run(&targets.distributor("out"), &dir("again")).await;
}
