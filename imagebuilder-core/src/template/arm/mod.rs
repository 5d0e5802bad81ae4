//! Evaluation of ARM deployment templates that hold
//! `Microsoft.VirtualMachineImages/imageTemplates` resources.
//!
//! Azure VM Image Builder templates are often shipped as ARM deployments:
//! a `parameters` block, a `variables` block and a `resources` array whose
//! string values may be ARM template expressions (`"[concat(...)]"`). This
//! module evaluates those expressions locally so the image template can be
//! run without Azure Resource Manager:
//!
//! * [`SuppliedParameters`] collects user values (parameters file and
//!   `--parameter NAME=VALUE`);
//! * [`evaluate_deployment`] resolves parameters and variables and returns
//!   every `imageTemplates` resource with all expressions evaluated;
//! * [`ArmEnvironment`] supplies what `resourceGroup()` and `subscription()`
//!   return, since there is no real Azure context.
//!
//! Errors are collected rather than returned one at a time, and each
//! [`ArmError`] carries a path into the document such as
//! `resources[0].properties.customize[1].inline[0]`. Errors inside an
//! expression also give a position: the 1-based character offset within
//! that JSON string, counting its opening `[` as position 1.
//!
//! Templates may be hostile: nesting, the size of every value an
//! expression produces and the total work of an evaluation are bounded
//! (all limits are in `limits.rs`), so deep or explosive input is an error
//! rather than a crash, and the values of `securestring` and
//! `secureObject` parameters are never shown in errors.
//!
//! Deliberate differences from Azure: `guid()` and `uniqueString()` are
//! deterministic but use a different hash than Azure (see
//! `functions/hash.rs`); functions that need live Azure state
//! (`reference`, `list*`, `newGuid`, ...) are reported as unsupported.

mod deployment;
mod environment;
mod error;
mod eval;
mod expression;
mod functions;
mod lazy;
mod lexer;
mod limits;
mod parameters;
mod parser;
mod path;
mod value;
mod variables;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use deployment::{evaluate_deployment, is_deployment, EvaluatedResource};
pub use environment::ArmEnvironment;
pub use error::ArmError;
pub use parameters::SuppliedParameters;
pub(crate) use parameters::REDACTED;
