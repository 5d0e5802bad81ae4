//! The distributor factory for builds on this machine.

use std::sync::Arc;

use imagebuilder_core::distribute::{DistributeError, Distributor, DistributorFactory};
use imagebuilder_core::template::model::DistributorSpec;

use crate::VhdDistributor;

/// Makes the distributors this crate has: VHD files now; managed images and galleries with
/// issue #5.
#[derive(Debug, Clone, Default)]
pub struct LocalTargets;

impl DistributorFactory for LocalTargets {
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError> {
        match spec {
            DistributorSpec::Vhd(vhd) => Ok(Arc::new(VhdDistributor::new(
                &vhd.run_output_name,
                &vhd.uri,
                vhd.artifact_tags.clone(),
            ))),
            DistributorSpec::ManagedImage(t) => {
                Err(unsupported(&t.run_output_name, "ManagedImage"))
            }
            DistributorSpec::SharedImage(t) => Err(unsupported(&t.run_output_name, "SharedImage")),
            DistributorSpec::ObjectStore(t) => Err(unsupported(&t.run_output_name, "ObjectStore")),
        }
    }
}

fn unsupported(run_output_name: &str, kind: &str) -> DistributeError {
    DistributeError::Unsupported {
        run_output_name: run_output_name.to_owned(),
        message: format!("{kind} targets are not available yet (issue #5)"),
    }
}
