//! The fault matrix of issue #8 on the mock host: a fault in every phase, a timeout, a cancel
//! in every phase and panics; after each, the run record names the cause, no VM and no
//! transient file is left, and what an earlier run published (a VHD file and a gallery
//! version, by the real local targets) is byte for byte unchanged.
//!
//! `cargo test -p imagebuilder-drivers --test fault_matrix_mock -- --nocapture` prints the
//! matrix (`docs/reliability.md` shows it).
#![cfg(feature = "mock")]

mod fault_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fault_support::{local_targets_with_gallery, print_and_assert, MatrixRow, Published};
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor, DistributorFactory,
};
use imagebuilder_core::engine::{BuildEvent, Engine, RunOptions, RunReport};
use imagebuilder_core::run::{RunOutput, RunState, RunSubState};
use imagebuilder_core::source::{BaseDisk, Source, SourceError, SourceResolver};
use imagebuilder_core::template::model::{DistributorSpec, SourceSpec};
use imagebuilder_core::template::{parse_value, ImageTemplate, ParseOptions};
use imagebuilder_dist::LocalTargets;
use imagebuilder_drivers::mock::{MockBuildHost, MockOp, MockResponse};
use serde_json::{json, Value};

const GALLERY: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/faults";

/// Small captures keep the published files quick to hash before and after every row.
const CAPTURE_SIZE: u64 = 4 << 20;

/// The state every row runs against: one gallery, one staging area, outputs of earlier runs.
struct World {
    dir: PathBuf,
    targets: LocalTargets,
}

impl World {
    fn new() -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault_matrix_mock");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("payload.txt"), "payload\n").unwrap();
        // A file where a folder should be: a VHD target under it cannot be written.
        std::fs::write(dir.join("blocker"), "not a folder\n").unwrap();
        let targets = local_targets_with_gallery(&dir, GALLERY);
        Self { dir, targets }
    }

    /// Where published things live: registries, regions, the staging area's outputs.
    fn published_roots(&self) -> Vec<PathBuf> {
        ["state", "regions", "staging"]
            .iter()
            .map(|d| self.dir.join(d))
            .collect()
    }

    /// A template with every kind of step, a validator and two real targets.
    fn template(&self, edit: impl FnOnce(&mut Value)) -> ImageTemplate {
        let mut doc = json!({
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2025-10-01",
            "name": "fault-matrix",
            "location": "local",
            "properties": {
                "source": {"type": "DiskImage", "uri": "file:///images/base.raw", "format": "raw"},
                "customize": [
                    {"type": "Shell", "name": "packages", "inline": ["sudo apt-get install -y nginx"]},
                    {"type": "File", "name": "payload", "sourceUri": format!("file://{}/payload.txt", self.dir.display()),
                     "destination": "/tmp/payload.txt"},
                    {"type": "Restart", "restartCheckCommand": "test -f /tmp/payload.txt"},
                    {"type": "Shell", "name": "config", "inline": ["sudo systemctl enable nginx"]}
                ],
                "optimize": {"vmBoot": {"state": "Enabled"}},
                "validate": {"inVMValidations": [{"type": "Shell", "name": "check", "inline": ["systemctl is-enabled nginx"]}]},
                "distribute": [
                    {"type": "VHD", "runOutputName": "vhd"},
                    {"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": format!("{GALLERY}/images/web")}
                ]
            }
        });
        edit(&mut doc);
        let parsed =
            parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{:?}", d.all()));
        parsed.templates.into_iter().next().unwrap()
    }
}

/// The built-in resolver, or a failure injected into the source lookup.
struct FaultySource {
    fail: Option<String>,
}

#[async_trait]
impl Source for FaultySource {
    async fn resolve(&self, spec: &SourceSpec) -> Result<BaseDisk, SourceError> {
        match &self.fail {
            Some(message) => Err(SourceError::Lookup {
                what: "the source image".into(),
                message: message.clone(),
            }),
            None => SourceResolver::default().resolve(spec).await,
        }
    }
}

/// A fault injected into one target, around the real distributor.
#[derive(Clone)]
enum TargetFault {
    Panic(&'static str),
    /// Waits before the real distributor starts.
    Delay(Duration),
    /// The real distributor publishes, then this waits before returning.
    HangAfter(Duration),
}

/// The real local targets, with faults injected by runOutputName.
struct FaultyTargets {
    inner: LocalTargets,
    faults: BTreeMap<String, TargetFault>,
}

impl FaultyTargets {
    fn wrap(&self, name: &str, inner: Arc<dyn Distributor>) -> Arc<dyn Distributor> {
        match self.faults.get(name) {
            Some(fault) => Arc::new(FaultyTarget {
                inner,
                fault: fault.clone(),
            }),
            None => inner,
        }
    }
}

impl DistributorFactory for FaultyTargets {
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError> {
        let inner = self.inner.distributor(spec)?;
        Ok(self.wrap(spec.run_output_name(), inner))
    }

    fn distributors(
        &self,
        specs: &[&DistributorSpec],
    ) -> Vec<Result<Arc<dyn Distributor>, DistributeError>> {
        // The real ones, made together so they share one read of the capture.
        self.inner
            .distributors(specs)
            .into_iter()
            .zip(specs)
            .map(|(made, spec)| made.map(|d| self.wrap(spec.run_output_name(), d)))
            .collect()
    }
}

struct FaultyTarget {
    inner: Arc<dyn Distributor>,
    fault: TargetFault,
}

#[async_trait]
impl Distributor for FaultyTarget {
    fn run_output_name(&self) -> &str {
        self.inner.run_output_name()
    }

    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError> {
        match &self.fault {
            TargetFault::Panic(message) => panic!("{message}"),
            TargetFault::Delay(delay) => {
                tokio::time::sleep(*delay).await;
                self.inner.distribute(image, cx).await
            }
            TargetFault::HangAfter(delay) => {
                let output = self.inner.distribute(image, cx).await;
                tokio::time::sleep(*delay).await;
                output
            }
        }
    }
}

/// Whether an event is the one to act on.
type EventTest = Arc<dyn Fn(&BuildEvent) -> bool + Send + Sync>;

/// One row's set-up: what is injected where.
struct Case {
    host: MockBuildHost,
    template: Box<dyn FnOnce(&mut Value)>,
    source_fails: Option<String>,
    target_faults: BTreeMap<String, TargetFault>,
    /// Cancel when this event is emitted.
    cancel_when: Option<EventTest>,
    /// Cancel this long after the start.
    cancel_after: Option<Duration>,
}

impl Case {
    /// Cancel as the run enters `phase`.
    fn cancel_in(&mut self, phase: RunSubState) {
        self.cancel_when = Some(Arc::new(
            move |e| matches!(e, BuildEvent::StateChanged { run_state: RunState::Running, run_sub_state } if *run_sub_state == phase),
        ));
    }
}

struct Row {
    fault: &'static str,
    phase: &'static str,
    setup: Box<dyn FnOnce(&mut Case)>,
    expected: (RunState, RunSubState),
    cause: String,
    /// The outputs the run record must list (none unless said).
    outputs: &'static [&'static str],
}

impl Row {
    fn reporting(mut self, outputs: &'static [&'static str]) -> Self {
        self.outputs = outputs;
        self
    }
}

fn row(
    fault: &'static str,
    phase: &'static str,
    expected: (RunState, RunSubState),
    cause: impl Into<String>,
    setup: impl FnOnce(&mut Case) + 'static,
) -> Row {
    Row {
        fault,
        phase,
        setup: Box::new(setup),
        expected,
        cause: cause.into(),
        outputs: &[],
    }
}

use RunState::{Canceled, Failed, PartiallySucceeded};
use RunSubState::{Building, Customizing, Distributing, Optimizing, Queued, Validating};

/// Every row; `baseline_version` is the gallery version the baseline run published.
fn rows(world: &World, baseline_version: &str) -> Vec<Row> {
    let blocked_vhd = format!("{}/blocker/web.vhd", world.dir.display());
    let existing_version = format!("{GALLERY}/images/web/versions/{baseline_version}");
    let long = Duration::from_secs(3 * 3600);
    let mut rows = vec![
        row(
            "fails",
            "source fetch (resolve)",
            (Failed, Building),
            "injected: image store unreachable",
            |c| c.source_fails = Some("injected: image store unreachable".into()),
        ),
        row(
            "fails",
            "source fetch (artifact)",
            (Failed, Building),
            "missing-payload.txt",
            |c| {
                c.template = Box::new(|t| {
                    t["properties"]["customize"][1]["sourceUri"] =
                        json!("file:///nonexistent/missing-payload.txt")
                })
            },
        ),
        row(
            "fails",
            "provision",
            (Failed, Building),
            "injected: no VM slot on the hypervisor",
            |c| {
                c.host.fail(
                    MockOp::ProvisionBuild,
                    "injected: no VM slot on the hypervisor",
                )
            },
        ),
        row(
            "fails",
            "customizer 1 (Shell)",
            (Failed, Customizing),
            "Shell 'packages' exited with code 97",
            |c| {
                c.host.on_exec(
                    "apt-get install",
                    MockResponse::exit(97).stderr("E: injected"),
                )
            },
        ),
        row(
            "fails",
            "customizer 2 (File)",
            (Failed, Customizing),
            "/missing-dir",
            |c| {
                c.template = Box::new(|t| {
                    t["properties"]["customize"][1]["destination"] =
                        json!("/missing-dir/payload.txt")
                })
            },
        ),
        row(
            "fails",
            "upload (every step's)",
            (Failed, Customizing),
            "injected: sftp write refused",
            |c| c.host.fail(MockOp::Upload, "injected: sftp write refused"),
        ),
        row(
            "fails",
            "customizer 3 (Restart)",
            (Failed, Customizing),
            "injected: the guest did not come back",
            |c| {
                c.host
                    .fail(MockOp::Restart, "injected: the guest did not come back")
            },
        ),
        row(
            "fails",
            "customizer 4 (Shell)",
            (Failed, Customizing),
            "Shell 'config' exited with code 98",
            |c| c.host.on_exec("systemctl enable", MockResponse::exit(98)),
        ),
        row(
            "fails",
            "generalize",
            (Failed, Customizing),
            "Generalize exited with code 99",
            |c| c.host.on_exec("cloud-init clean", MockResponse::exit(99)),
        ),
        row(
            "fails",
            "shutdown",
            (Failed, Customizing),
            "injected: power-off ignored",
            |c| c.host.fail(MockOp::Shutdown, "injected: power-off ignored"),
        ),
        row(
            "fails",
            "capture",
            (Failed, Customizing),
            "injected: qemu-img convert failed",
            |c| {
                c.host
                    .fail(MockOp::Capture, "injected: qemu-img convert failed")
            },
        ),
        row(
            "fails",
            "validation VM provision",
            (Failed, Validating),
            "injected: no VM slot for validation",
            |c| {
                c.host.fail(
                    MockOp::ProvisionValidation,
                    "injected: no VM slot for validation",
                )
            },
        ),
        row(
            "fails",
            "validator",
            (Failed, Validating),
            "Shell 'check' exited with code 3",
            |c| {
                c.host
                    .on_exec("systemctl is-enabled", MockResponse::exit(3))
            },
        ),
        row(
            "fails",
            "distributor 1 (VHD)",
            (PartiallySucceeded, Distributing),
            "blocker",
            move |c| {
                c.template =
                    Box::new(move |t| t["properties"]["distribute"][0]["uri"] = json!(blocked_vhd))
            },
        )
        .reporting(&["gallery"]),
        row(
            "fails",
            "distributor 2 (gallery)",
            (PartiallySucceeded, Distributing),
            baseline_version.to_owned(),
            move |c| {
                c.template = Box::new(move |t| {
                    t["properties"]["distribute"][1]["galleryImageId"] = json!(existing_version)
                })
            },
        )
        .reporting(&["vhd"]),
        row(
            "panic",
            "customizer 4 (Shell)",
            (Failed, Customizing),
            "panicked",
            |c| c.host.on_exec("systemctl enable", MockResponse::panics()),
        ),
        row(
            "panic",
            "distributor 2 (gallery)",
            (Failed, Distributing),
            "injected: a distributor bug",
            |c| {
                c.target_faults.insert(
                    "gallery".into(),
                    TargetFault::Panic("injected: a distributor bug"),
                );
            },
        ),
        row(
            "timeout",
            "customizer 1 (Shell)",
            (Failed, Customizing),
            "buildTimeoutInMinutes (6 minutes) during Customizing",
            move |c| {
                c.host
                    .on_exec("apt-get install", MockResponse::exit(0).after(long));
                c.template = Box::new(|t| t["properties"]["buildTimeoutInMinutes"] = json!(6));
            },
        ),
        row(
            "timeout",
            "distributors",
            (Failed, Distributing),
            "buildTimeoutInMinutes (6 minutes) during Distributing",
            move |c| {
                for name in ["vhd", "gallery"] {
                    c.target_faults
                        .insert(name.into(), TargetFault::Delay(long));
                }
                c.template = Box::new(|t| t["properties"]["buildTimeoutInMinutes"] = json!(6));
            },
        ),
    ];
    for (phase, sub_state) in [
        ("queued", Queued),
        ("building", Building),
        ("customizing", Customizing),
        ("optimizing", Optimizing),
        ("validating", Validating),
        ("distributing", Distributing),
    ] {
        rows.push(row(
            "cancel",
            phase,
            (Canceled, sub_state),
            "canceled",
            move |c| {
                c.cancel_in(sub_state);
                // The phase's work outlasts the cancel, as a real one would.
                if sub_state == Building {
                    c.host.delay(MockOp::ProvisionBuild, long);
                }
                if sub_state == Distributing {
                    for name in ["vhd", "gallery"] {
                        c.target_faults
                            .insert(name.into(), TargetFault::Delay(long));
                    }
                }
            },
        ));
    }
    // The VHD target has returned; the gallery target hangs after writing (so it never says
    // what it published): the run record must list the VHD.
    rows.push(
        row(
            "cancel",
            "distributing, VHD done",
            (Canceled, Distributing),
            "canceled",
            move |c| {
                c.target_faults
                    .insert("gallery".into(), TargetFault::HangAfter(long));
                c.cancel_after = Some(Duration::from_secs(3600));
            },
        )
        .reporting(&["vhd"]),
    );
    rows.push(
        row(
            "timeout",
            "distributing, VHD done",
            (Failed, Distributing),
            "buildTimeoutInMinutes (6 minutes) during Distributing",
            move |c| {
                c.target_faults
                    .insert("gallery".into(), TargetFault::HangAfter(long));
                c.template = Box::new(|t| t["properties"]["buildTimeoutInMinutes"] = json!(6));
            },
        )
        .reporting(&["vhd"]),
    );
    rows
}

/// Runs `template` on `host` with the world's (possibly faulty) targets.
async fn run(world: &World, name: &str, case: Case) -> (RunReport, PathBuf) {
    let engine = Engine::new(
        Arc::new(case.host.clone()),
        Arc::new(FaultySource {
            fail: case.source_fails,
        }),
        Arc::new(FaultyTargets {
            inner: world.targets.clone(),
            faults: case.target_faults,
        }),
    );
    let template = world.template(case.template);
    let dir = world.dir.join("runs").join(name);
    let mut options = RunOptions::new(&dir);
    // Every run shares the template's staging area, as runs of one template do.
    options.staging_dir = world.dir.join("staging");
    let events = Arc::new(Mutex::new(Vec::new()));
    let cancel = options.cancel.clone();
    let cancel_when = case.cancel_when;
    // A run that is not queued emits no Queued state: cancel it before it starts.
    let queued = BuildEvent::StateChanged {
        run_state: RunState::Running,
        run_sub_state: Queued,
    };
    if cancel_when.as_ref().is_some_and(|when| when(&queued)) {
        cancel.cancel();
    }
    let seen = events.clone();
    options.events = Arc::new(move |e: BuildEvent| {
        if cancel_when.as_ref().is_some_and(|when| when(&e)) {
            cancel.cancel();
        }
        seen.lock().unwrap().push(e);
    });
    if let Some(after) = case.cancel_after {
        let cancel = options.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            cancel.cancel();
        });
    }
    let report = engine.run(&template, options).await;
    (report, dir)
}

fn blank_case() -> Case {
    Case {
        host: MockBuildHost::new().with_capture_size(CAPTURE_SIZE),
        template: Box::new(|_| {}),
        source_fails: None,
        target_faults: BTreeMap::new(),
        cancel_when: None,
        cancel_after: None,
    }
}

// Paused time: timeouts and long delays pass at once, in the order they would.
#[tokio::test(start_paused = true)]
async fn fault_matrix_on_the_mock_host() {
    let world = World::new();
    // An earlier, successful run with the same targets: what no later run may change.
    let (baseline, _) = run(&world, "baseline", blank_case()).await;
    assert_eq!(
        baseline.run_state,
        RunState::Succeeded,
        "{} {:?}",
        baseline.message,
        baseline.failures
    );
    let version = baseline
        .outputs
        .iter()
        .find(|o| o.run_output_name == "gallery")
        .and_then(|o| o.artifact_id.rsplit("/versions/").next().map(str::to_owned))
        .expect("the baseline published a gallery version");

    let mut results = Vec::new();
    for (index, row) in rows(&world, &version).into_iter().enumerate() {
        let before = Published::take(&world.published_roots()).await;
        let mut case = blank_case();
        (row.setup)(&mut case);
        let host = case.host.clone();
        let (report, dir) = run(&world, &format!("row-{index:02}"), case).await;
        let mut result = MatrixRow::check(row.fault, row.phase, &report, row.expected, &row.cause);
        let reported: Vec<&str> = report
            .outputs
            .iter()
            .map(|o| o.run_output_name.as_str())
            .collect();
        if reported != row.outputs {
            result.problems.push(format!(
                "the run record lists outputs {reported:?}, expected {:?}",
                row.outputs
            ));
        }

        let mut leaks: Vec<String> = host
            .live_vms()
            .into_iter()
            .chain(host.kept_vms())
            .map(|vm| format!("VM {vm}"))
            .collect();
        if dir.join("work").exists() {
            leaks.push(format!(
                "work dir {:?}",
                fault_support::files_under(&dir.join("work"))
            ));
        }
        result.leaked(leaks);

        let after = Published::take(&world.published_roots()).await;
        let mut changes = after.changed_since(&before);
        if report.outputs.is_empty() {
            // A run that published nothing leaves nothing, not even a partial output.
            changes.extend(after.added_since(&before));
        }
        result.published(changes);
        results.push(result);
    }
    print_and_assert(
        "Fault matrix, mock host (cargo test -p imagebuilder-drivers --test fault_matrix_mock -- --nocapture)",
        &results,
    );
}
