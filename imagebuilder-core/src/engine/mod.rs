//! The build engine: a pure lifecycle ([`RunMachine`]) and the async driver ([`Engine`]) that
//! performs what it decides.

mod admission;
mod driver;
mod events;
mod log;
mod machine;
mod phases;
mod report;
mod resources;
mod scrub;

pub use admission::{EngineLimits, ASSUMED_VM_MEMORY_MIB};
pub use driver::{new_run_id, Engine, RunOptions};
pub use events::{BuildEvent, EventSink, NoEvents};
pub use machine::{InvalidTransition, RunAction, RunEvent, RunFlags, RunMachine};
pub use report::{RunReport, TargetFailure};
