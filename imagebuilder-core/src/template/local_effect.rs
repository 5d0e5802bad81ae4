//! Fields of AIB's template that are valid but do nothing on a local build host. Each is
//! reported as a warning naming the field and why, so `validate` and `build` never ignore a
//! field silently. A field leaves this list when it gets a local meaning.

use super::diagnostics::{Diagnostics, ErrorCode, Path};
use super::model::{DistributorSpec, FeatureState, ImageTemplate, SourceSpec};

/// Warns about each field of `template` that has no effect here. `resource` is the path of
/// the resource object (where `identity` stands); `properties` the path of its properties.
pub(crate) fn warn_without_effect(
    template: &ImageTemplate,
    resource: &Path,
    properties: &Path,
    diags: &mut Diagnostics,
) {
    let mut warn = |path: Path, why: &str| {
        diags.warning(
            &path,
            ErrorCode::Other,
            format!("has no effect here: {why}"),
        );
    };
    let p = &template.properties;

    if template
        .identity
        .as_ref()
        .is_some_and(|i| !i.user_assigned_identities.is_empty())
    {
        warn(
            resource.field("identity"),
            "the build reads artifacts and writes targets with the credentials of the \
             environment (AWS_*, AZURE_STORAGE_*, GOOGLE_*), not a managed identity",
        );
    }
    if !p.vm_profile.user_assigned_identities.is_empty() {
        warn(
            properties
                .field("vmProfile")
                .field("userAssignedIdentities"),
            "the build VM gets no identity token service yet; a step cannot obtain tokens \
             for these identities",
        );
    }
    if let Some(vnet) = &p.vm_profile.vnet_config {
        let vnet_path = properties.field("vmProfile").field("vnetConfig");
        for (value, field, why) in [
            (
                &vnet.subnet_id,
                "subnetId",
                "the build VM uses the host's network (QEMU's user network, or the libvirt \
                 network given with --libvirt-network), not an Azure subnet",
            ),
            (
                &vnet.proxy_vm_size,
                "proxyVmSize",
                "there is no proxy VM: the host reaches the build VM directly",
            ),
            (
                &vnet.container_instance_subnet_id,
                "containerInstanceSubnetId",
                "there is no isolated-build container: the build runs in this process",
            ),
        ] {
            if !value.is_empty() {
                warn(vnet_path.field(field), why);
            }
        }
    }
    if p.staging_resource_group.is_some() {
        warn(
            properties.field("stagingResourceGroup"),
            "staging resources live in the state directory's staging area of the template",
        );
    }
    if let Some(optimize) = &p.optimize {
        let optimize_path = properties.field("optimize");
        if optimize
            .vm_boot
            .as_ref()
            .is_some_and(|b| b.state == FeatureState::Enabled)
        {
            warn(
                optimize_path.field("vmBoot"),
                "boot optimization pre-warms the image in Azure's platform; a locally built \
                 image is captured as it is",
            );
        }
        if optimize
            .workload
            .as_ref()
            .is_some_and(|w| w.state == FeatureState::Enabled)
        {
            warn(
                optimize_path.field("workload"),
                "workload optimization is a service of AIB that runs no script here; add the \
                 script as a Shell customizer instead",
            );
        }
    }
    if p.auto_run
        .as_ref()
        .is_some_and(|a| a.state == FeatureState::Enabled)
    {
        warn(
            properties.field("autoRun"),
            "a template is built when it is run (imagebuilder build, or template run), not \
             when it is created",
        );
    }
    if !p.additional_data_disks.is_empty() {
        warn(
            properties.field("additionalDataDisks"),
            "the build VM gets no data disks and the image none; only the OS disk is captured",
        );
    }
    if let SourceSpec::PlatformImage(image) = &p.source {
        if image.plan_info.is_some() {
            warn(
                properties.field("source").field("planInfo"),
                "there is no marketplace purchase: the environment maps the image to a local \
                 file",
            );
        }
    }
    for (index, target) in p.distribute.iter().enumerate() {
        let DistributorSpec::SharedImage(gallery) = target else {
            continue;
        };
        for (region_index, region) in gallery.target_regions.iter().flatten().enumerate() {
            if region.replica_count > 1 {
                warn(
                    properties
                        .field("distribute")
                        .index(index)
                        .field("targetRegions")
                        .index(region_index)
                        .field("replicaCount"),
                    "recorded on the version, but one replica is written per region: a \
                     region is one object store, which keeps its own redundancy",
                );
            }
        }
    }
}
