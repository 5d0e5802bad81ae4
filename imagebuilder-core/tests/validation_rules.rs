//! One test per validation rule: each breaks one rule in an otherwise valid template and
//! asserts the provisioningErrorCode and JSON path AIB users will see.

use imagebuilder_core::template::{parse_value, ErrorCode, ParseOptions, Severity};
use serde_json::{json, Value};

/// A valid resource object using every part of the schema the rules touch.
fn base() -> Value {
    json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2024-02-01",
        "location": "westeurope",
        "identity": {
            "type": "UserAssigned",
            "userAssignedIdentities": {
                "/subscriptions/0000/resourceGroups/rg-images/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aib": {}
            }
        },
        "properties": {
            "source": {
                "type": "PlatformImage", "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"
            },
            "customize": [
                {"type": "Shell", "name": "tools", "inline": ["sudo apt-get install -y jq"]},
                {"type": "PowerShell", "scriptUri": "https://example.test/setup.ps1",
                 "sha256Checksum": "a".repeat(64), "runElevated": true},
                {"type": "File", "sourceUri": "https://example.test/motd", "destination": "/tmp/motd"},
                {"type": "WindowsRestart", "restartTimeout": "10m"},
                {"type": "WindowsUpdate", "filters": ["exclude:$_.Title -like '*Preview*'"], "updateLimit": 20}
            ],
            "validate": {
                "inVMValidations": [
                    {"type": "Shell", "inline": ["test -f /tmp/motd"]},
                    {"type": "File", "sourceUri": "https://example.test/check", "destination": "/tmp/check"}
                ]
            },
            "distribute": [
                {"type": "ManagedImage", "runOutputName": "managed",
                 "imageId": "/subscriptions/0000/resourceGroups/rg-images/providers/Microsoft.Compute/images/jammy",
                 "location": "westeurope"},
                {"type": "SharedImage", "runOutputName": "gallery",
                 "galleryImageId": "/subscriptions/0000/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/g/images/jammy",
                 "targetRegions": [{"name": "westeurope"}, {"name": "northeurope", "replicaCount": 2}],
                 "versioning": {"scheme": "Latest", "major": 1}},
                {"type": "VHD", "runOutputName": "vhd"}
            ],
            "buildTimeoutInMinutes": 90,
            "vmProfile": {
                "vmSize": "Standard_D2ds_v4",
                "vnetConfig": {"subnetId": "/subscriptions/0000/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/build"}
            },
            "stagingResourceGroup": "/subscriptions/0000/resourceGroups/rg-staging"
        }
    })
}

/// The errors (path, code) found after `edit` is applied to the base template.
fn errors_after(edit: impl FnOnce(&mut Value)) -> Vec<(String, ErrorCode)> {
    let mut doc = base();
    edit(&mut doc);
    match parse_value(&doc, &ParseOptions::default()) {
        Ok(_) => Vec::new(),
        Err(diags) => diags.errors().map(|d| (d.path.clone(), d.code)).collect(),
    }
}

fn one(path: &str, code: ErrorCode) -> Vec<(String, ErrorCode)> {
    vec![(path.to_owned(), code)]
}

fn props(doc: &mut Value) -> &mut Value {
    &mut doc["properties"]
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

/// The warnings the base template gets for fields with no effect on a local host
/// (`tests/local_effect.rs` covers them); the base has no other warning.
const BASE_WITHOUT_LOCAL_EFFECT: [&str; 4] = [
    "identity",
    "properties.vmProfile.vnetConfig.subnetId",
    "properties.stagingResourceGroup",
    "properties.distribute[1].targetRegions[1].replicaCount",
];

#[test]
fn base_template_is_valid_warning_only_of_fields_without_local_effect() {
    let doc = parse_value(&base(), &ParseOptions::default()).expect("base template is valid");
    assert_eq!(doc.templates.len(), 1);
    let warnings: Vec<(&str, bool)> = doc
        .warnings
        .all()
        .iter()
        .map(|d| {
            (
                d.path.as_str(),
                d.severity == Severity::Warning && d.message.starts_with("has no effect here: "),
            )
        })
        .collect();
    let expected: Vec<(&str, bool)> = BASE_WITHOUT_LOCAL_EFFECT
        .iter()
        .map(|p| (*p, true))
        .collect();
    assert_eq!(warnings, expected);
}

#[test]
fn source_is_required() {
    let found = errors_after(|d| remove(props(d), "source"));
    assert_eq!(found, one("properties.source", ErrorCode::BadSourceType));
}

#[test]
fn source_type_must_be_known() {
    let found = errors_after(|d| props(d)["source"]["type"] = json!("ISO"));
    assert_eq!(
        found,
        one("properties.source.type", ErrorCode::BadSourceType)
    );
}

#[test]
fn platform_image_needs_every_name() {
    for field in ["publisher", "offer", "sku", "version"] {
        let found = errors_after(|d| remove(&mut props(d)["source"], field));
        let path = format!("properties.source.{field}");
        assert_eq!(found, one(&path, ErrorCode::BadPIRSource), "{field}");
    }
}

#[test]
fn platform_image_version_is_latest_or_numbers() {
    let found = errors_after(|d| props(d)["source"]["version"] = json!("newest"));
    assert_eq!(
        found,
        one("properties.source.version", ErrorCode::BadPIRSource)
    );
}

#[test]
fn plan_info_needs_all_three_fields() {
    let found = errors_after(|d| {
        props(d)["source"]["planInfo"] = json!({"planName": "n", "planProduct": "p"})
    });
    assert_eq!(
        found,
        one(
            "properties.source.planInfo.planPublisher",
            ErrorCode::BadPIRSource
        )
    );
}

#[test]
fn managed_image_source_id_has_image_shape() {
    let found = errors_after(|d| {
        props(d)["source"] = json!({"type": "ManagedImage",
            "imageId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d"})
    });
    assert_eq!(
        found,
        one(
            "properties.source.imageId",
            ErrorCode::BadManagedImageSource
        )
    );
}

#[test]
fn gallery_version_source_needs_a_version() {
    let found = errors_after(|d| {
        props(d)["source"] = json!({"type": "SharedImageVersion",
            "imageVersionId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i"})
    });
    assert_eq!(
        found,
        one(
            "properties.source.imageVersionId",
            ErrorCode::BadSharedImageVersionSource
        )
    );
}

#[test]
fn gallery_version_source_accepts_latest_and_shared_galleries() {
    for id in [
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/latest",
        "/sharedGalleries/unique-name/images/i/versions/1.0.0",
    ] {
        let found = errors_after(|d| {
            props(d)["source"] = json!({"type": "SharedImageVersion", "imageVersionId": id})
        });
        assert_eq!(found, vec![], "{id}");
    }
}

#[test]
fn disk_image_source_refuses_trusted_launch_images() {
    let found = errors_after(|d| {
        props(d)["source"] = json!({"type": "DiskImage", "uri": "file:///images/base.qcow2",
            "securityType": "TrustedLaunch"})
    });
    assert_eq!(
        found,
        one("properties.source.securityType", ErrorCode::BadSourceType)
    );
}

#[test]
fn customizer_type_must_be_known() {
    let found = errors_after(|d| props(d)["customize"][0]["type"] = json!("Bash"));
    assert_eq!(
        found,
        one("properties.customize[0].type", ErrorCode::BadCustomizerType)
    );
}

#[test]
fn customizer_type_is_required() {
    let found = errors_after(|d| remove(&mut props(d)["customize"][2], "type"));
    assert_eq!(
        found,
        one("properties.customize[2].type", ErrorCode::BadCustomizerType)
    );
}

#[test]
fn shell_needs_a_script() {
    let found = errors_after(|d| remove(&mut props(d)["customize"][0], "inline"));
    assert_eq!(
        found,
        one("properties.customize[0]", ErrorCode::NoCustomizerScript)
    );
}

#[test]
fn empty_inline_counts_as_no_script() {
    let found = errors_after(|d| props(d)["customize"][0]["inline"] = json!([]));
    assert_eq!(
        found,
        one("properties.customize[0]", ErrorCode::NoCustomizerScript)
    );
}

#[test]
fn script_uri_and_inline_are_exclusive() {
    let found = errors_after(|d| props(d)["customize"][1]["inline"] = json!(["Write-Host hi"]));
    assert_eq!(
        found,
        one("properties.customize[1]", ErrorCode::NoCustomizerScript)
    );
}

#[test]
fn sha256_checksum_is_64_hex_digits() {
    for bad in ["a".repeat(63), "g".repeat(64), "sha256:abc".to_owned()] {
        let found = errors_after(|d| props(d)["customize"][1]["sha256Checksum"] = json!(bad));
        assert_eq!(
            found,
            one(
                "properties.customize[1].sha256Checksum",
                ErrorCode::BadCustomizerType
            ),
            "{bad}"
        );
    }
}

#[test]
fn run_as_system_needs_run_elevated() {
    let found = errors_after(|d| {
        props(d)["customize"][1]["runElevated"] = json!(false);
        props(d)["customize"][1]["runAsSystem"] = json!(true);
    });
    assert_eq!(
        found,
        one(
            "properties.customize[1].runAsSystem",
            ErrorCode::BadCustomizerType
        )
    );
}

#[test]
fn restart_timeout_is_a_duration() {
    let found = errors_after(|d| props(d)["customize"][3]["restartTimeout"] = json!("5 minutes"));
    assert_eq!(
        found,
        one(
            "properties.customize[3].restartTimeout",
            ErrorCode::BadCustomizerType
        )
    );
}

#[test]
fn file_needs_source_and_absolute_destination() {
    let found = errors_after(|d| remove(&mut props(d)["customize"][2], "sourceUri"));
    assert_eq!(
        found,
        one(
            "properties.customize[2].sourceUri",
            ErrorCode::BadCustomizerType
        )
    );
    let found = errors_after(|d| props(d)["customize"][2]["destination"] = json!("motd"));
    assert_eq!(
        found,
        one(
            "properties.customize[2].destination",
            ErrorCode::BadCustomizerType
        )
    );
}

#[test]
fn validator_type_must_be_known() {
    let found =
        errors_after(|d| props(d)["validate"]["inVMValidations"][0]["type"] = json!("Bash"));
    assert_eq!(
        found,
        one(
            "properties.validate.inVMValidations[0].type",
            ErrorCode::BadValidatorType
        )
    );
}

#[test]
fn customizer_only_types_are_unsupported_validators() {
    let found = errors_after(|d| {
        props(d)["validate"]["inVMValidations"][0] = json!({"type": "WindowsUpdate"})
    });
    assert_eq!(
        found,
        one(
            "properties.validate.inVMValidations[0].type",
            ErrorCode::UnsupportedValidatorType
        )
    );
}

#[test]
fn validator_needs_a_script() {
    let found = errors_after(|d| remove(&mut props(d)["validate"]["inVMValidations"][0], "inline"));
    assert_eq!(
        found,
        one(
            "properties.validate.inVMValidations[0]",
            ErrorCode::NoValidatorScript
        )
    );
}

#[test]
fn distribute_is_required_and_not_empty() {
    let found = errors_after(|d| props(d)["distribute"] = json!([]));
    assert_eq!(
        found,
        one("properties.distribute", ErrorCode::BadDistributeType)
    );
    let found = errors_after(|d| remove(props(d), "distribute"));
    assert_eq!(
        found,
        one("properties.distribute", ErrorCode::BadDistributeType)
    );
}

#[test]
fn distribute_type_must_be_known() {
    let found = errors_after(|d| props(d)["distribute"][2]["type"] = json!("Blob"));
    assert_eq!(
        found,
        one(
            "properties.distribute[2].type",
            ErrorCode::BadDistributeType
        )
    );
}

#[test]
fn run_output_name_matches_the_pattern() {
    for bad in ["has space", "", &"x".repeat(65)] {
        let found = errors_after(|d| props(d)["distribute"][2]["runOutputName"] = json!(bad));
        assert_eq!(
            found,
            one(
                "properties.distribute[2].runOutputName",
                ErrorCode::BadDistributeType
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn run_output_name_is_unique() {
    let found = errors_after(|d| props(d)["distribute"][2]["runOutputName"] = json!("managed"));
    assert_eq!(
        found,
        one(
            "properties.distribute[2].runOutputName",
            ErrorCode::BadDistributeType
        )
    );
}

#[test]
fn managed_image_target_needs_id_and_location() {
    let found =
        errors_after(|d| props(d)["distribute"][0]["imageId"] = json!("/subscriptions/s/images/x"));
    assert_eq!(
        found,
        one(
            "properties.distribute[0].imageId",
            ErrorCode::BadDistributeType
        )
    );
    let found = errors_after(|d| remove(&mut props(d)["distribute"][0], "location"));
    assert_eq!(
        found,
        one(
            "properties.distribute[0].location",
            ErrorCode::BadDistributeType
        )
    );
}

#[test]
fn gallery_image_id_is_a_definition_or_explicit_version() {
    let gallery =
        "/subscriptions/0000/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/g";
    let found = errors_after(|d| props(d)["distribute"][1]["galleryImageId"] = json!(gallery));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].galleryImageId",
            ErrorCode::BadSharedImageDistribute
        )
    );
    let latest = format!("{gallery}/images/jammy/versions/latest");
    let found = errors_after(|d| props(d)["distribute"][1]["galleryImageId"] = json!(latest));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].galleryImageId",
            ErrorCode::BadSharedImageDistribute
        )
    );
    let explicit = format!("{gallery}/images/jammy/versions/1.2.3");
    assert_eq!(
        errors_after(|d| props(d)["distribute"][1]["galleryImageId"] = json!(explicit)),
        vec![]
    );
}

#[test]
fn target_regions_and_replication_regions_are_exclusive() {
    let found =
        errors_after(|d| props(d)["distribute"][1]["replicationRegions"] = json!(["eastus"]));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].targetRegions",
            ErrorCode::BadSharedImageDistribute
        )
    );
}

#[test]
fn storage_account_type_only_with_replication_regions() {
    let found =
        errors_after(|d| props(d)["distribute"][1]["storageAccountType"] = json!("Standard_LRS"));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].storageAccountType",
            ErrorCode::BadSharedImageDistribute
        )
    );
    let with_replication = errors_after(|d| {
        let target = &mut props(d)["distribute"][1];
        remove(target, "targetRegions");
        target["replicationRegions"] = json!(["eastus"]);
        target["storageAccountType"] = json!("Premium_LRS");
    });
    assert_eq!(with_replication, vec![]);
}

#[test]
fn replica_count_is_at_least_one() {
    let found =
        errors_after(|d| props(d)["distribute"][1]["targetRegions"][1]["replicaCount"] = json!(0));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].targetRegions[1].replicaCount",
            ErrorCode::BadSharedImageDistribute
        )
    );
}

#[test]
fn storage_account_type_is_a_known_type() {
    let found = errors_after(|d| {
        props(d)["distribute"][1]["targetRegions"][0]["storageAccountType"] = json!("Ultra_LRS")
    });
    assert_eq!(
        found,
        one(
            "properties.distribute[1].targetRegions[0].storageAccountType",
            ErrorCode::BadSharedImageDistribute
        )
    );
}

#[test]
fn versioning_scheme_is_latest_or_source() {
    let found =
        errors_after(|d| props(d)["distribute"][1]["versioning"] = json!({"scheme": "Semver"}));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].versioning.scheme",
            ErrorCode::BadSharedImageDistribute
        )
    );
    let found = errors_after(|d| {
        props(d)["distribute"][1]["versioning"] = json!({"scheme": "Source", "major": 2})
    });
    assert_eq!(
        found,
        one(
            "properties.distribute[1].versioning.major",
            ErrorCode::BadSharedImageDistribute
        )
    );
    let found = errors_after(|d| {
        props(d)["distribute"][1]["versioning"] = json!({"scheme": "Latest", "major": -2})
    });
    assert_eq!(
        found,
        one(
            "properties.distribute[1].versioning.major",
            ErrorCode::BadSharedImageDistribute
        )
    );
}

#[test]
fn build_timeout_is_0_to_960() {
    let found = errors_after(|d| props(d)["buildTimeoutInMinutes"] = json!(961));
    assert_eq!(
        found,
        one("properties.buildTimeoutInMinutes", ErrorCode::Other)
    );
    let found = errors_after(|d| props(d)["buildTimeoutInMinutes"] = json!(-1));
    assert_eq!(
        found,
        one("properties.buildTimeoutInMinutes", ErrorCode::Other)
    );
    assert_eq!(
        errors_after(|d| props(d)["buildTimeoutInMinutes"] = json!(960)),
        vec![]
    );
}

#[test]
fn build_timeout_zero_means_240_minutes() {
    let mut doc = base();
    props(&mut doc)["buildTimeoutInMinutes"] = json!(0);
    let parsed = parse_value(&doc, &ParseOptions::default()).unwrap();
    assert_eq!(
        parsed.templates[0]
            .properties
            .effective_build_timeout_minutes(),
        240
    );
}

#[test]
fn staging_resource_group_is_a_resource_group_id() {
    let found = errors_after(|d| props(d)["stagingResourceGroup"] = json!("rg-staging"));
    assert_eq!(
        found,
        one(
            "properties.stagingResourceGroup",
            ErrorCode::BadStagingResourceGroup
        )
    );
}

#[test]
fn subnet_id_has_subnet_shape() {
    let found = errors_after(|d| {
        props(d)["vmProfile"]["vnetConfig"]["subnetId"] = json!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
        )
    });
    assert_eq!(
        found,
        one("properties.vmProfile.vnetConfig.subnetId", ErrorCode::Other)
    );
}

#[test]
fn build_vm_identities_have_identity_shape() {
    let found = errors_after(|d| {
        props(d)["vmProfile"]["userAssignedIdentities"] =
            json!(["/subscriptions/s/resourceGroups/rg"])
    });
    assert_eq!(
        found,
        one(
            "properties.vmProfile.userAssignedIdentities[0]",
            ErrorCode::Other
        )
    );
}

#[test]
fn template_identity_has_identity_shape_and_is_single() {
    let found = errors_after(|d| {
        d["identity"]["userAssignedIdentities"] =
            json!({"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/x": {}})
    });
    assert_eq!(
        found,
        one(
            "identity.userAssignedIdentities['/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/x']",
            ErrorCode::Other
        )
    );
    let found = errors_after(|d| {
        d["identity"]["userAssignedIdentities"] = json!({
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a": {},
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/b": {}
        })
    });
    assert_eq!(
        found,
        one("identity.userAssignedIdentities", ErrorCode::Other)
    );
}

#[test]
fn container_instance_subnet_needs_a_build_subnet() {
    let found = errors_after(|d| {
        props(d)["vmProfile"]["vnetConfig"] = json!({"containerInstanceSubnetId":
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"})
    });
    assert_eq!(
        found,
        one(
            "properties.vmProfile.vnetConfig.containerInstanceSubnetId",
            ErrorCode::Other
        )
    );
}

#[test]
fn unknown_fields_are_rejected_from_2024_02_01() {
    let found = errors_after(|d| props(d)["customize"][0]["timeout"] = json!("5m"));
    assert_eq!(
        found,
        one("properties.customize[0].timeout", ErrorCode::Other)
    );
}

#[test]
fn field_names_are_case_sensitive_from_2024_02_01() {
    let found = errors_after(|d| {
        let target = props(d)["distribute"][2].as_object_mut().unwrap();
        let name = target.remove("runOutputName").unwrap();
        target.insert("RunOutputName".into(), name);
    });
    assert_eq!(
        found,
        one("properties.distribute[2].RunOutputName", ErrorCode::Other)
    );
    let found = errors_after(|d| props(d)["customize"][0]["type"] = json!("shell"));
    assert_eq!(found, one("properties.customize[0].type", ErrorCode::Other));
}

#[test]
fn older_api_versions_accept_other_case_and_unknown_fields_with_warnings() {
    let mut doc = base();
    doc["apiVersion"] = json!("2023-07-01");
    props(&mut doc)["customize"][0]["type"] = json!("shell");
    props(&mut doc)["customize"][0]["timeout"] = json!("5m");
    let parsed = parse_value(&doc, &ParseOptions::default()).expect("lenient before 2024-02-01");
    let warnings: Vec<&str> = parsed
        .warnings
        .warnings()
        .map(|d| d.path.as_str())
        .collect();
    let mut expected = vec![
        "properties.customize[0].type",
        "properties.customize[0].timeout",
    ];
    expected.extend(BASE_WITHOUT_LOCAL_EFFECT);
    assert_eq!(warnings, expected);
    assert!(parsed
        .warnings
        .all()
        .iter()
        .all(|d| d.severity == Severity::Warning));
}

#[test]
fn fields_newer_than_the_api_version_are_rejected_when_strict() {
    let found = errors_after(|d| props(d)["additionalDataDisks"] = json!([{"sizeGB": 32}]));
    assert_eq!(
        found,
        one("properties.additionalDataDisks", ErrorCode::Other)
    );
}

#[test]
fn fields_newer_than_the_api_version_warn_when_lenient() {
    let mut doc = base();
    doc["apiVersion"] = json!("2022-02-14");
    remove(props(&mut doc), "validate");
    let distribute = &mut props(&mut doc)["distribute"][1];
    remove(distribute, "versioning");
    remove(distribute, "targetRegions");
    distribute["replicationRegions"] = json!(["westeurope"]);
    props(&mut doc)["errorHandling"] = json!({"onCustomizerError": "abort"});
    let parsed = parse_value(&doc, &ParseOptions::default()).expect("lenient");
    let warning = parsed
        .warnings
        .warnings()
        .find(|d| d.path == "properties.errorHandling")
        .expect("a warning names errorHandling");
    assert!(
        warning.message.contains("2023-07-01"),
        "{}",
        warning.message
    );
    let handling = parsed.templates[0].properties.effective_error_handling();
    assert_eq!(handling.on_customizer_error.to_string(), "abort");
}

#[test]
fn api_version_must_be_known() {
    let found = errors_after(|d| d["apiVersion"] = json!("2021-01-01"));
    assert_eq!(found, one("apiVersion", ErrorCode::Other));
}

#[test]
fn template_name_matches_the_pattern() {
    let found = errors_after(|d| d["name"] = json!("my template"));
    assert_eq!(found, one("name", ErrorCode::Other));
}

#[test]
fn wrong_json_types_name_the_field() {
    let found = errors_after(|d| props(d)["buildTimeoutInMinutes"] = json!("60"));
    assert_eq!(
        found,
        one("properties.buildTimeoutInMinutes", ErrorCode::Other)
    );
    let found = errors_after(|d| props(d)["customize"][1]["runElevated"] = json!("yes"));
    assert_eq!(
        found,
        one(
            "properties.customize[1].runElevated",
            ErrorCode::BadCustomizerType
        )
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let found = errors_after(|d| {
        props(d)["source"]["type"] = json!("ISO");
        props(d)["customize"][1]["sha256Checksum"] = json!("abc");
        props(d)["distribute"][2]["runOutputName"] = json!("bad name");
        props(d)["buildTimeoutInMinutes"] = json!(1000);
    });
    assert_eq!(
        found,
        vec![
            (
                "properties.source.type".to_owned(),
                ErrorCode::BadSourceType
            ),
            (
                "properties.customize[1].sha256Checksum".to_owned(),
                ErrorCode::BadCustomizerType
            ),
            (
                "properties.distribute[2].runOutputName".to_owned(),
                ErrorCode::BadDistributeType
            ),
            (
                "properties.buildTimeoutInMinutes".to_owned(),
                ErrorCode::Other
            ),
        ]
    );
}

#[test]
fn placeholders_pass_format_checks() {
    let found = errors_after(|d| {
        props(d)["distribute"][2]["runOutputName"] = json!("<runOutputName>");
        props(d)["source"] =
            json!({"type": "SharedImageVersion", "imageVersionId": "<sigDefImgVersionId>"});
        props(d)["distribute"][0]["imageId"] =
            json!("/subscriptions/<subscriptionID>/resourceGroups/<rgName>/providers/Microsoft.Compute/images/<imageName>");
    });
    assert_eq!(found, vec![]);
}

#[test]
fn linux_restart_is_an_extension_with_its_own_default_command() {
    use imagebuilder_core::template::model::CustomizerSpec;
    let mut doc = base();
    props(&mut doc)["customize"] = json!([{"type": "Restart", "restartTimeout": "10m"}]);
    let parsed = parse_value(&doc, &ParseOptions::default()).expect("Restart is accepted");
    let CustomizerSpec::Restart(step) = &parsed.templates[0].properties.customize[0] else {
        panic!("a Restart step");
    };
    assert_eq!(step.restart_command, "sudo reboot");
    assert_eq!(step.restart_timeout.duration().as_secs(), 600);
    let found =
        errors_after(|d| props(d)["validate"]["inVMValidations"][0] = json!({"type": "Restart"}));
    assert_eq!(
        found,
        one(
            "properties.validate.inVMValidations[0].type",
            ErrorCode::UnsupportedValidatorType
        )
    );
}

#[test]
fn steps_for_the_other_operating_system_are_unsupported_customizer_types() {
    let disk =
        |os: &str| json!({"type": "DiskImage", "uri": "file:///images/base.qcow2", "osType": os});
    // The base template mixes Linux and Windows steps: a Linux source refuses the Windows ones.
    let found = errors_after(|d| props(d)["source"] = disk("Linux"));
    assert_eq!(
        found,
        vec![
            (
                "properties.customize[1].type".to_owned(),
                ErrorCode::UnsupportedCustomizerType
            ),
            (
                "properties.customize[3].type".to_owned(),
                ErrorCode::UnsupportedCustomizerType
            ),
            (
                "properties.customize[4].type".to_owned(),
                ErrorCode::UnsupportedCustomizerType
            ),
        ]
    );
    let found = errors_after(|d| props(d)["source"] = disk("Windows"));
    assert_eq!(
        found,
        one(
            "properties.customize[0].type",
            ErrorCode::UnsupportedCustomizerType
        )
    );
    // Without a known osType (platform images) nothing is refused at validation time.
    assert_eq!(errors_after(|_| {}), vec![]);
}

#[test]
fn end_of_life_date_must_be_a_date() {
    let found = errors_after(|d| props(d)["distribute"][1]["endOfLifeDate"] = json!("next year"));
    assert_eq!(
        found,
        one(
            "properties.distribute[1].endOfLifeDate",
            ErrorCode::BadSharedImageDistribute
        )
    );
    for good in ["2030-01-31", "2030-01-31T12:00:00Z"] {
        assert_eq!(
            errors_after(|d| props(d)["distribute"][1]["endOfLifeDate"] = json!(good)),
            vec![],
            "{good}"
        );
    }
}

#[test]
fn object_store_targets_need_a_uri_and_a_known_format() {
    let found = errors_after(|d| {
        props(d)["distribute"][2] = json!({"type": "ObjectStore", "runOutputName": "obj"});
    });
    assert_eq!(
        found,
        one("properties.distribute[2].uri", ErrorCode::BadDistributeType)
    );
    let found = errors_after(|d| {
        props(d)["distribute"][2] = json!({"type": "ObjectStore", "runOutputName": "obj",
            "uri": "s3://bucket/image.vhd", "format": "vmdk"});
    });
    assert_eq!(
        found,
        one(
            "properties.distribute[2].format",
            ErrorCode::BadDistributeType
        )
    );
    let fine = errors_after(|d| {
        props(d)["distribute"][2] = json!({"type": "ObjectStore", "runOutputName": "obj",
            "uri": "s3://bucket/image.vhd", "format": "vhd-dynamic"});
    });
    assert_eq!(fine, vec![]);
}
