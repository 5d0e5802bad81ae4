//! `vmProfile`, `errorHandling`, `optimize`, `autoRun` and `additionalDataDisks`.

use serde_json::Value;

use super::reader::{read_enum, Cx, Fields};
use super::sha256_field;
use super::source::check_id;
use crate::template::diagnostics::{ErrorCode, Path};
use crate::template::model::{
    AutoRun, DataDisk, ErrorHandling, Optimize, VmBootOptimization, VmProfile, VnetConfig,
    WorkloadOptimization,
};
use crate::template::rules::ResourceIdShape;
use crate::template::ApiVersion;

pub(super) fn vm_profile(cx: &mut Cx<'_>, value: &Value, path: Path) -> VmProfile {
    let Some(mut f) = Fields::of(cx, value, path, ErrorCode::Other) else {
        return VmProfile::default();
    };
    let vm_size = f.str_or_empty(cx, "vmSize");
    let os_disk_size_gb = f.u32_or(cx, "osDiskSizeGB", 0);
    let mut user_assigned_identities = Vec::new();
    if let Some(items) = f
        .get_since(cx, "userAssignedIdentities", ApiVersion::V2021_10_01)
        .and_then(|v| f.elements(cx, "userAssignedIdentities", v))
    {
        for (path, item) in items {
            match item.as_str() {
                Some(id) => {
                    check_id(
                        cx,
                        &path,
                        ErrorCode::Other,
                        ResourceIdShape::UserAssignedIdentity,
                        id,
                    );
                    user_assigned_identities.push(id.to_owned());
                }
                None => cx.error(
                    &path,
                    ErrorCode::Other,
                    "expected an identity ARM id (a string)",
                ),
            }
        }
    }
    let vnet_config = f.object(cx, "vnetConfig").map(|vnet| vnet_config(cx, vnet));
    f.finish(cx);
    VmProfile {
        vm_size,
        os_disk_size_gb,
        user_assigned_identities,
        vnet_config,
    }
}

fn vnet_config(cx: &mut Cx<'_>, mut f: Fields<'_>) -> VnetConfig {
    let subnet_id = f.str_or_empty(cx, "subnetId");
    check_id(
        cx,
        &f.at("subnetId"),
        ErrorCode::Other,
        ResourceIdShape::Subnet,
        &subnet_id,
    );
    let container_instance_subnet_id =
        f.str_since(cx, "containerInstanceSubnetId", ApiVersion::V2024_02_01);
    let path = f.at("containerInstanceSubnetId");
    check_id(
        cx,
        &path,
        ErrorCode::Other,
        ResourceIdShape::Subnet,
        &container_instance_subnet_id,
    );
    if !container_instance_subnet_id.is_empty() {
        if subnet_id.is_empty() {
            cx.error(
                &path,
                ErrorCode::Other,
                "containerInstanceSubnetId requires subnetId",
            );
        } else if container_instance_subnet_id.eq_ignore_ascii_case(&subnet_id) {
            cx.error(
                &path,
                ErrorCode::Other,
                "containerInstanceSubnetId must be a different subnet from subnetId",
            );
        }
    }
    let proxy_vm_size = f.str_or_empty(cx, "proxyVmSize");
    if !proxy_vm_size.is_empty() && !container_instance_subnet_id.is_empty() {
        cx.error(
            &f.at("proxyVmSize"),
            ErrorCode::Other,
            "proxyVmSize must not be set together with containerInstanceSubnetId",
        );
    }
    f.finish(cx);
    VnetConfig {
        subnet_id,
        container_instance_subnet_id,
        proxy_vm_size,
    }
}

pub(super) fn error_handling(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<ErrorHandling> {
    let mut f = Fields::of(cx, value, path, ErrorCode::Other)?;
    let defaults = ErrorHandling::default();
    let handling = ErrorHandling {
        on_customizer_error: f
            .enum_opt(cx, "onCustomizerError")
            .unwrap_or(defaults.on_customizer_error),
        on_validation_error: f
            .enum_opt(cx, "onValidationError")
            .unwrap_or(defaults.on_validation_error),
    };
    f.finish(cx);
    Some(handling)
}

pub(super) fn optimize(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<Optimize> {
    let mut f = Fields::of(cx, value, path, ErrorCode::Other)?;
    let vm_boot = f.object(cx, "vmBoot").and_then(|mut boot| {
        let state = required_state(cx, &mut boot);
        boot.finish(cx);
        state.map(|state| VmBootOptimization { state })
    });
    let workload = f
        .get_since(cx, "workload", ApiVersion::V2025_10_01)
        .and_then(|v| Fields::of(cx, v, f.at("workload"), ErrorCode::Other))
        .and_then(|mut w| {
            let state = required_state(cx, &mut w);
            let script_uri = w.str_or_empty(cx, "scriptUri");
            let sha256_checksum = sha256_field(cx, &mut w);
            w.finish(cx);
            state.map(|state| WorkloadOptimization {
                state,
                script_uri,
                sha256_checksum,
            })
        });
    f.finish(cx);
    Some(Optimize { vm_boot, workload })
}

pub(super) fn auto_run(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<AutoRun> {
    let mut f = Fields::of(cx, value, path, ErrorCode::Other)?;
    let state = required_state(cx, &mut f);
    f.finish(cx);
    state.map(|state| AutoRun { state })
}

fn required_state(
    cx: &mut Cx<'_>,
    f: &mut Fields<'_>,
) -> Option<crate::template::model::FeatureState> {
    match f.get(cx, "state") {
        Some(v) => read_enum(cx, v, &f.at("state"), ErrorCode::Other, "state"),
        None => {
            cx.error(
                &f.at("state"),
                ErrorCode::Other,
                "state is required: 'Enabled' or 'Disabled'",
            );
            None
        }
    }
}

pub(super) fn data_disks(cx: &mut Cx<'_>, items: Vec<(Path, &Value)>) -> Vec<DataDisk> {
    items
        .into_iter()
        .filter_map(|(path, value)| {
            let mut f = Fields::of(cx, value, path, ErrorCode::Other)?;
            if !f.has("sizeGB") {
                cx.error(&f.at("sizeGB"), ErrorCode::Other, "sizeGB is required");
            }
            let size_gb = f.u32_or(cx, "sizeGB", 0);
            f.finish(cx);
            Some(DataDisk { size_gb })
        })
        .collect()
}
