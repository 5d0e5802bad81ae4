//! Fields AIB accepts that do nothing on a local host are reported as warnings naming the
//! field, in every input shape; the same fields switched off or absent say nothing.

use imagebuilder_core::template::{parse_value, ParseOptions};
use serde_json::{json, Value};

/// A template using every field that has no local effect.
fn all_without_effect() -> Value {
    json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2025-10-01",
        "location": "westeurope",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aib": {}}},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12",
                       "version": "latest",
                       "planInfo": {"planName": "p", "planProduct": "q", "planPublisher": "r"}},
            "distribute": [
                {"type": "VHD", "runOutputName": "vhd"},
                {"type": "SharedImage", "runOutputName": "gallery",
                 "galleryImageId": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i",
                 "targetRegions": [{"name": "westeurope"}, {"name": "northeurope", "replicaCount": 3}]}
            ],
            "vmProfile": {
                "userAssignedIdentities": [
                    "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vm"],
                "vnetConfig": {
                    "subnetId": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/build",
                    "containerInstanceSubnetId": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"}
            },
            "stagingResourceGroup": "/subscriptions/0000/resourceGroups/rg-staging",
            "optimize": {"vmBoot": {"state": "Enabled"},
                         "workload": {"state": "Enabled", "scriptUri": "https://example.test/w.sh"}},
            "autoRun": {"state": "Enabled"},
            "additionalDataDisks": [{"sizeGB": 16}]
        }
    })
}

/// The paths of the "has no effect here" warnings for `doc`.
fn paths_without_effect(doc: &Value) -> Vec<String> {
    let parsed = parse_value(doc, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("valid template: {:?}", d.all()));
    parsed
        .warnings
        .warnings()
        .filter(|d| d.message.starts_with("has no effect here: "))
        .map(|d| d.path.to_string())
        .collect()
}

const EVERY_PATH: [&str; 11] = [
    "identity",
    "properties.vmProfile.userAssignedIdentities",
    "properties.vmProfile.vnetConfig.subnetId",
    "properties.vmProfile.vnetConfig.containerInstanceSubnetId",
    "properties.stagingResourceGroup",
    "properties.optimize.vmBoot",
    "properties.optimize.workload",
    "properties.autoRun",
    "properties.additionalDataDisks",
    "properties.source.planInfo",
    "properties.distribute[1].targetRegions[1].replicaCount",
];

#[test]
fn each_field_without_local_effect_is_a_warning_naming_it() {
    assert_eq!(paths_without_effect(&all_without_effect()), EVERY_PATH);
}

#[test]
fn bare_properties_and_deployments_name_the_same_fields_at_their_paths() {
    let resource = all_without_effect();
    let mut bare = resource["properties"].clone();
    bare["apiVersion"] = json!("2025-10-01");
    let expected: Vec<String> = EVERY_PATH
        .iter()
        .filter_map(|p| p.strip_prefix("properties."))
        .map(str::to_owned)
        .collect();
    assert_eq!(paths_without_effect(&bare), expected);

    let deployment = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [resource]
    });
    let in_deployment: Vec<String> = EVERY_PATH
        .iter()
        .map(|p| format!("resources[0].{p}"))
        .collect();
    assert_eq!(paths_without_effect(&deployment), in_deployment);
}

#[test]
fn switched_off_or_single_replica_fields_say_nothing() {
    let mut doc = all_without_effect();
    let p = &mut doc["properties"];
    p["optimize"] = json!({"vmBoot": {"state": "Disabled"}, "workload": {"state": "Disabled"}});
    p["autoRun"] = json!({"state": "Disabled"});
    p["distribute"][1]["targetRegions"][1]["replicaCount"] = json!(1);
    for gone in ["additionalDataDisks", "stagingResourceGroup", "vmProfile"] {
        p.as_object_mut().unwrap().remove(gone);
    }
    p["source"].as_object_mut().unwrap().remove("planInfo");
    doc.as_object_mut().unwrap().remove("identity");
    assert_eq!(paths_without_effect(&doc), Vec::<String>::new());
}
