//! ARM deployment templates evaluated into typed image templates: parameters, variables,
//! expressions, several templates in one deployment, and errors that name what is missing.

use imagebuilder_core::template::arm::{ArmEnvironment, SuppliedParameters};
use imagebuilder_core::template::model::{CustomizerSpec, DistributorSpec, Script, SourceSpec};
use imagebuilder_core::template::{parse_value, ErrorCode, InputShape, ParseOptions};
use serde_json::{json, Value};

fn deployment() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "imageTemplateName": {"type": "string"},
            "api-version": {"type": "string", "defaultValue": "2022-07-01"},
            "svclocation": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "sizeGB": {"type": "int", "defaultValue": 30}
        },
        "variables": {
            "galleryId": "[concat('/subscriptions/', subscription().subscriptionId, '/resourceGroups/', resourceGroup().name, '/providers/Microsoft.Compute/galleries/golden')]",
            "imageId": "[concat(variables('galleryId'), '/images/', toLower(parameters('imageTemplateName')))]"
        },
        "resources": [
            {
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "apiVersion": "2023-01-31",
                "name": "aib",
                "location": "[reference('something').location]"
            },
            {
                "name": "[parameters('imageTemplateName')]",
                "type": "Microsoft.VirtualMachineImages/imageTemplates",
                "apiVersion": "[parameters('api-version')]",
                "location": "[parameters('svclocation')]",
                "dependsOn": [],
                "properties": {
                    "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "UbuntuServer",
                               "sku": "18.04-LTS", "version": "latest"},
                    "customize": [{"type": "Shell", "name": "stamp",
                                   "inline": ["[format('echo {0} > /tmp/name', parameters('imageTemplateName'))]"]}],
                    "vmProfile": {"osDiskSizeGB": "[parameters('sizeGB')]"},
                    "distribute": [{"type": "SharedImage", "runOutputName": "[concat(parameters('imageTemplateName'), '-sig')]",
                                    "galleryImageId": "[variables('imageId')]",
                                    "targetRegions": [{"name": "[parameters('svclocation')]"}]}]
                }
            }
        ]
    })
}

fn options(pairs: &[(&str, &str)]) -> ParseOptions {
    let mut parameters = SuppliedParameters::default();
    for (name, value) in pairs {
        parameters.insert_text(name, value);
    }
    ParseOptions {
        parameters,
        environment: ArmEnvironment {
            subscription_id: "1234".into(),
            resource_group: "rg-images".into(),
            location: "westeurope".into(),
            ..ArmEnvironment::default()
        },
        default_api_version: None,
    }
}

#[test]
fn evaluates_parameters_variables_and_functions_into_the_typed_model() {
    let doc = parse_value(&deployment(), &options(&[("imageTemplateName", "Jammy")])).unwrap();
    assert_eq!(doc.shape, InputShape::Deployment);
    assert_eq!(doc.templates.len(), 1, "the identity resource is skipped");
    let t = &doc.templates[0];
    assert_eq!(t.name.as_deref(), Some("Jammy"));
    assert_eq!(t.location.as_deref(), Some("westeurope"));
    assert_eq!(t.api_version.as_str(), "2022-07-01");
    assert_eq!(t.properties.vm_profile.os_disk_size_gb, 30);
    assert!(matches!(&t.properties.source, SourceSpec::PlatformImage(p) if p.sku == "18.04-LTS"));
    let CustomizerSpec::Shell(shell) = &t.properties.customize[0] else {
        panic!()
    };
    assert_eq!(
        shell.script,
        Script::Inline(vec!["echo Jammy > /tmp/name".into()])
    );
    let DistributorSpec::SharedImage(gallery) = &t.properties.distribute[0] else {
        panic!()
    };
    assert_eq!(gallery.run_output_name, "Jammy-sig");
    assert_eq!(
        gallery.gallery_image_id,
        "/subscriptions/1234/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/golden/images/jammy"
    );
    assert_eq!(
        gallery.target_regions.as_ref().unwrap()[0].name,
        "westeurope"
    );
}

#[test]
fn a_missing_parameter_is_an_error_naming_it() {
    let err = parse_value(&deployment(), &options(&[])).unwrap_err();
    let errors: Vec<(&str, ErrorCode)> = err.errors().map(|d| (d.path.as_str(), d.code)).collect();
    assert_eq!(errors, [("parameters.imageTemplateName", ErrorCode::Other)]);
    let message = &err.errors().next().unwrap().message;
    assert!(message.contains("imageTemplateName"), "{message}");
}

#[test]
fn supplied_values_are_checked_against_the_declared_type() {
    let err = parse_value(
        &deployment(),
        &options(&[("imageTemplateName", "jammy"), ("sizeGB", "thirty")]),
    )
    .unwrap_err();
    let paths: Vec<&str> = err.errors().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["parameters.sizeGB"]);
}

#[test]
fn template_errors_carry_the_resource_index() {
    let mut doc = deployment();
    doc["resources"][1]["properties"]["customize"][0]["sha256Checksum"] = json!("abc");
    let err = parse_value(&doc, &options(&[("imageTemplateName", "jammy")])).unwrap_err();
    let errors: Vec<(&str, ErrorCode)> = err.errors().map(|d| (d.path.as_str(), d.code)).collect();
    assert_eq!(
        errors,
        [(
            "resources[1].properties.customize[0].sha256Checksum",
            ErrorCode::BadCustomizerType
        )]
    );
}

#[test]
fn evaluated_values_are_validated_like_literal_ones() {
    let err = parse_value(
        &deployment(),
        &options(&[("imageTemplateName", "bad name")]),
    )
    .unwrap_err();
    let paths: Vec<&str> = err.errors().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "resources[1].name",
            "resources[1].properties.distribute[0].runOutputName"
        ]
    );
}

#[test]
fn several_templates_in_one_deployment() {
    let mut doc = deployment();
    let mut second = doc["resources"][1].clone();
    second["name"] = json!("[concat(parameters('imageTemplateName'), '-2')]");
    second["properties"]["distribute"] = json!([{"type": "VHD", "runOutputName": "vhd"}]);
    doc["resources"].as_array_mut().unwrap().push(second);
    let parsed = parse_value(&doc, &options(&[("imageTemplateName", "jammy")])).unwrap();
    let names: Vec<&str> = parsed
        .templates
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    assert_eq!(names, ["jammy", "jammy-2"]);
}

#[test]
fn a_deployment_without_image_templates_is_refused() {
    let mut doc = deployment();
    doc["resources"].as_array_mut().unwrap().remove(1);
    let err = parse_value(&doc, &options(&[("imageTemplateName", "jammy")])).unwrap_err();
    let paths: Vec<&str> = err.errors().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["resources"]);
}

#[test]
fn parameters_files_supply_values_and_command_line_values_win() {
    let file = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"imageTemplateName": {"value": "from-file"}, "sizeGB": {"value": 64}}
    });
    let mut parameters = SuppliedParameters::from_parameters_file(&file).unwrap();
    parameters.insert_text("imageTemplateName", "from-cli");
    let options = ParseOptions {
        parameters,
        ..ParseOptions::default()
    };
    let parsed = parse_value(&deployment(), &options).unwrap();
    assert_eq!(parsed.templates[0].name.as_deref(), Some("from-cli"));
    assert_eq!(
        parsed.templates[0].properties.vm_profile.os_disk_size_gb,
        64
    );
}
