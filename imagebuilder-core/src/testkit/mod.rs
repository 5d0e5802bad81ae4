//! Contract checks every [`BuildHost`](crate::host::BuildHost) and
//! [`Distributor`](crate::distribute::Distributor) implementation runs: one `pub async fn` per
//! behaviour, each panicking with a message naming what broke. Call each from its own
//! `#[test]` so a failure names the check:
//!
//! ```text
//! #[tokio::test]
//! async fn exec_reports_exit_codes() {
//!     imagebuilder_core::testkit::host::exec_reports_exit_codes(&my_host(), &my_context()).await;
//! }
//! ```

pub mod distributor;
pub mod env;
pub mod host;
