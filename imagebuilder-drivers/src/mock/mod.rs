//! An in-process build host for tests: no VM, no process, no network.
//!
//! Commands succeed unless a rule says otherwise; a script uploaded and run (as the Shell
//! customizer does) is played line by line against the rules, stopping at the first failing
//! line as `sh -e` would. `test -f` and `test -d` answer from the files uploaded so far.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use imagebuilder_core::engine::{Engine, RunOptions};
//! use imagebuilder_core::distribute::InMemoryTargets;
//! use imagebuilder_core::plan::TemplateBuilder;
//! use imagebuilder_core::run::RunState;
//! use imagebuilder_core::source::SourceResolver;
//! use imagebuilder_core::template::model::{DiskImageSource, SourceSpec};
//! use imagebuilder_drivers::mock::{MockBuildHost, MockCall, MockResponse};
//!
//! let host = MockBuildHost::new();
//! host.on_exec("apt-get install", MockResponse::exit(100).stderr("E: Unable to locate package"));
//! let targets = InMemoryTargets::new();
//! let template = TemplateBuilder::new("web")
//!     .source(SourceSpec::DiskImage(DiskImageSource {
//!         uri: "file:///images/base.qcow2".into(), format: None, sha256_checksum: String::new(),
//!         os_type: None, hyper_v_generation: None, security_type: None,
//!     }))
//!     .shell(["sudo apt-get install -y nginx"])
//!     .distribute_to(targets.distributor("web"))
//!     .build();
//! let engine = Engine::new(Arc::new(host.clone()), Arc::new(SourceResolver::default()), Arc::new(targets.clone()));
//! let dir = std::env::temp_dir().join(format!("mock-doc-{}", std::process::id()));
//! let report = engine.run(&template, RunOptions::new(&dir)).await;
//! assert_eq!(report.run_state, RunState::Failed);
//! assert!(report.message.contains("exited with code 100"), "{}", report.message);
//! assert!(host.live_vms().is_empty(), "the build VM was destroyed");
//! assert!(targets.names().is_empty(), "nothing was published");
//! # });
//! ```

mod guest;
mod host;
mod rules;

pub use host::{MockBuildHost, MockCall, MockOp};
pub use rules::MockResponse;
