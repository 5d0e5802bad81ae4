//! End-to-end tests of `evaluate_deployment` on whole templates.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::eval::{evaluate_string, EvalContext};
use super::test_support::TestResolver;
use super::*;

const IT: &str = "Microsoft.VirtualMachineImages/imageTemplates";
const RG_ID: &str =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/imagebuilder";

fn template(parameters: Value, variables: Value, resources: Value) -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
        "variables": variables,
        "resources": resources
    })
}

fn image(properties: Value) -> Value {
    json!({
        "type": IT,
        "apiVersion": "2022-02-14",
        "name": "img",
        "location": "[resourceGroup().location]",
        "properties": properties
    })
}

fn run(
    doc: &Value,
    supplied: &SuppliedParameters,
) -> Result<Vec<EvaluatedResource>, Vec<ArmError>> {
    evaluate_deployment(doc, supplied, &ArmEnvironment::default())
}

/// The first resource's `properties`, for templates expected to succeed.
fn props(doc: &Value, supplied: &SuppliedParameters) -> Value {
    match run(doc, supplied) {
        Ok(r) => r[0].resource["properties"].clone(),
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

/// All errors as `path: message`, sorted so map ordering cannot matter.
fn errors(doc: &Value, supplied: &SuppliedParameters) -> Vec<String> {
    let mut e: Vec<String> = run(doc, supplied)
        .expect_err("expected errors")
        .iter()
        .map(ToString::to_string)
        .collect();
    e.sort();
    e
}

fn none() -> SuppliedParameters {
    SuppliedParameters::default()
}

fn supplied_text(pairs: &[(&str, &str)]) -> SuppliedParameters {
    let mut s = SuppliedParameters::default();
    for (k, v) in pairs {
        s.insert_text(k, v);
    }
    s
}

// ---- parameters -------------------------------------------------------

#[test]
fn defaults_are_used_and_may_be_expressions() {
    let doc = template(
        json!({
            "loc": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "prefix": {"type": "string", "defaultValue": "ib"},
            "name": {"type": "string", "defaultValue": "[concat(parameters('prefix'), '-img')]"},
            "size": {"type": "int", "defaultValue": 30},
            "tags": {"type": "object", "defaultValue": {"owner": "[parameters('prefix')]"}}
        }),
        json!({}),
        json!([image(json!({
            "l": "[parameters('loc')]",
            "n": "[parameters('name')]",
            "s": "[parameters('size')]",
            "t": "[parameters('tags')]"
        }))]),
    );
    assert_eq!(
        props(&doc, &none()),
        json!({"l": "local", "n": "ib-img", "s": 30, "t": {"owner": "ib"}})
    );
}

#[test]
fn supplied_text_is_converted_by_declared_type() {
    let doc = template(
        json!({
            "s": {"type": "string"},
            "ss": {"type": "secureString"},
            "i": {"type": "Int"},
            "b": {"type": "bool"},
            "o": {"type": "object"},
            "so": {"type": "secureObject"},
            "a": {"type": "array"}
        }),
        json!({}),
        json!([image(json!({
            "s": "[parameters('s')]", "ss": "[parameters('ss')]", "i": "[parameters('i')]",
            "b": "[parameters('b')]", "o": "[parameters('o')]", "so": "[parameters('so')]",
            "a": "[parameters('a')]"
        }))]),
    );
    let supplied = supplied_text(&[
        ("s", "42"),
        ("ss", "p@ss"),
        ("i", "-7"),
        ("b", "TRUE"),
        ("o", r#"{"k": [1]}"#),
        ("so", "{}"),
        ("a", r#"["x", 2]"#),
    ]);
    assert_eq!(
        props(&doc, &supplied),
        json!({"s": "42", "ss": "p@ss", "i": -7, "b": true, "o": {"k": [1]}, "so": {}, "a": ["x", 2]})
    );
}

#[test]
fn supplied_values_override_defaults_and_files() {
    let doc = template(
        json!({"name": {"type": "string", "defaultValue": "default"}}),
        json!({}),
        json!([image(json!({"n": "[parameters('name')]"}))]),
    );
    assert_eq!(props(&doc, &none())["n"], "default");
    let file = json!({"parameters": {"name": {"value": "from-file"}}});
    let mut supplied = SuppliedParameters::from_parameters_file(&file).unwrap();
    assert_eq!(props(&doc, &supplied)["n"], "from-file");
    supplied.insert_text("NAME", "from-cli");
    assert_eq!(props(&doc, &supplied)["n"], "from-cli");
}

#[test]
fn wrong_supplied_types_name_parameter_and_type() {
    let doc = template(
        json!({"count": {"type": "int"}, "flag": {"type": "bool"}}),
        json!({}),
        json!([image(json!({}))]),
    );
    assert_eq!(
        errors(&doc, &supplied_text(&[("count", "abc"), ("flag", "yes")])),
        vec![
            "parameters.count: value 'abc' for parameter 'count' is not a valid int; the parameter is declared as int",
            "parameters.flag: value 'yes' for parameter 'flag' is not a valid bool (expected true or false); the parameter is declared as bool",
        ]
    );
    let mut json_supplied = SuppliedParameters::default();
    json_supplied.insert_json("count", json!("3"));
    json_supplied.insert_json("flag", json!(true));
    assert_eq!(
        errors(&doc, &json_supplied),
        vec!["parameters.count: parameter 'count' is declared as int but was given a string value '3'"]
    );
}

#[test]
fn all_parameter_errors_are_reported_together() {
    let doc = template(
        json!({
            "imageTemplateName": {"type": "string"},
            "count": {"type": "int"},
            "sku": {"type": "string", "allowedValues": ["a", "b"]}
        }),
        json!({}),
        json!([image(json!({}))]),
    );
    let supplied = supplied_text(&[("count", "x"), ("sku", "c"), ("extra", "1")]);
    assert_eq!(
        errors(&doc, &supplied),
        vec![
            "parameters.count: value 'x' for parameter 'count' is not a valid int; the parameter is declared as int",
            "parameters.extra: parameter 'extra' was supplied but the template does not declare it (declared: count, imageTemplateName, sku)",
            "parameters.imageTemplateName: missing value for parameter 'imageTemplateName' (declared type string, no defaultValue); supply it with --parameter imageTemplateName=VALUE or a parameters file",
            "parameters.sku: value 'c' for parameter 'sku' is not one of the allowed values: 'a', 'b'",
        ]
    );
}

#[test]
fn unused_parameters_are_still_checked() {
    let doc = template(
        json!({"n": {"type": "int", "minValue": 1, "maxValue": 3}}),
        json!({}),
        json!([image(json!({}))]),
    );
    assert_eq!(
        errors(&doc, &supplied_text(&[("n", "4")])),
        vec!["parameters.n: value 4 for parameter 'n' is greater than maxValue 3"]
    );
    assert!(run(&doc, &supplied_text(&[("n", "2")])).is_ok());
}

#[test]
fn bad_declarations_and_defaults() {
    let doc = template(
        json!({
            "t": {"type": "float"},
            "u": {"defaultValue": 1},
            "d": {"type": "int", "defaultValue": "[concat('a', 'b')]"},
            "v": {"type": "string", "defaultValue": "[variables('x')]"},
            "loop1": {"type": "string", "defaultValue": "[parameters('loop2')]"},
            "loop2": {"type": "string", "defaultValue": "[parameters('loop1')]"}
        }),
        json!({"x": "1"}),
        json!([image(json!({}))]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "parameters.d.defaultValue: the defaultValue of parameter 'd' is a string but the parameter is declared as int",
            "parameters.loop1: circular reference between parameters: loop1 -> loop2 -> loop1",
            "parameters.t.type: parameter 't' has unknown type 'float' (expected string, securestring, int, bool, object, secureObject or array)",
            "parameters.u: parameter 'u' has no 'type'",
            "parameters.v.defaultValue: variables() cannot be used in a parameter defaultValue (at position 2)",
        ]
    );
}

#[test]
fn utc_now_only_in_parameter_defaults() {
    let doc = template(
        json!({"stamp": {"type": "string", "defaultValue": "[utcNow()]"}}),
        json!({}),
        json!([image(json!({"v": "[parameters('stamp')]"}))]),
    );
    let stamp = props(&doc, &none())["v"].as_str().unwrap().to_string();
    assert_eq!(stamp.len(), "20240101T000000Z".len());
    assert!(stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T');

    let doc = template(
        json!({}),
        json!({}),
        json!([image(json!({"v": "[utcNow('u')]"}))]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec!["resources[0].properties.v: function 'utcNow' can only be used in a parameter defaultValue (at position 2)"]
    );
}

// ---- variables --------------------------------------------------------

#[test]
fn variables_nest_and_reference_each_other() {
    let doc = template(
        json!({"name": {"type": "string", "defaultValue": "img"}}),
        json!({
            "base": "[toUpper(parameters('name'))]",
            "full": "[concat(variables('base'), '-', variables('settings').suffix)]",
            "settings": {"suffix": "[string(add(1, 1))]", "list": ["[variables('base')]", 3]},
            "literal": "[[kept]"
        }),
        json!([image(json!({
            "full": "[variables('full')]",
            "list": "[variables('settings').list]",
            "literal": "[variables('literal')]"
        }))]),
    );
    assert_eq!(
        props(&doc, &none()),
        json!({"full": "IMG-2", "list": ["IMG", 3], "literal": "[kept]"})
    );
}

#[test]
fn variables_are_only_evaluated_when_used() {
    let doc = template(
        json!({}),
        json!({"broken": "[reference('x').id]", "fine": "ok"}),
        json!([image(json!({"v": "[variables('fine')]"}))]),
    );
    assert_eq!(props(&doc, &none()), json!({"v": "ok"}));
}

#[test]
fn variable_errors_point_into_the_variable() {
    let doc = template(
        json!({}),
        json!({"foo": {"bar": ["[add(1)]"]}}),
        json!([image(
            json!({"a": "[variables('foo')]", "b": "[variables('foo').bar]"})
        )]),
    );
    // Reported once, at the variable, although two expressions use it.
    assert_eq!(
        errors(&doc, &none()),
        vec!["variables.foo.bar[0]: function 'add' expects 2 arguments, got 1 (at position 2)"]
    );
}

#[test]
fn variable_cycles_are_named() {
    let doc = template(
        json!({}),
        json!({"a": "[variables('b')]", "b": "[concat(variables('c'))]", "c": "[variables('a')]"}),
        json!([image(json!({"v": "[variables('a')]"}))]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec!["variables.a: circular reference between variables: a -> b -> c -> a"]
    );
    let doc = template(
        json!({}),
        json!({"self": {"x": "[variables('self')]"}}),
        json!([image(json!({"v": "[variables('self')]"}))]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec!["variables.self: circular reference between variables: self -> self"]
    );
}

#[test]
fn variable_copy_loops() {
    let doc = template(
        json!({"n": {"type": "int", "defaultValue": 3}}),
        json!({
            "copy": [
                {"name": "disks", "count": "[parameters('n')]",
                 "input": {"name": "[concat('disk', copyIndex('disks', 1))]", "lun": "[copyIndex('disks')]"}},
                {"name": "none", "count": 0, "input": "x"}
            ],
            "first": "[variables('disks')[0].name]"
        }),
        json!([image(
            json!({"disks": "[variables('disks')]", "first": "[variables('first')]", "none": "[variables('none')]"})
        )]),
    );
    assert_eq!(
        props(&doc, &none()),
        json!({
            "disks": [
                {"name": "disk1", "lun": 0},
                {"name": "disk2", "lun": 1},
                {"name": "disk3", "lun": 2}
            ],
            "first": "disk1",
            "none": []
        })
    );
}

#[test]
fn unsupported_or_malformed_variable_copy() {
    let doc = template(
        json!({}),
        json!({
            "copy": [{"name": "x"}, {"name": "big", "count": 801, "input": 1},
                     {"name": "wrong", "count": 1, "input": "[copyIndex('other')]"}],
            "nested": {"copy": [{"name": "d", "count": 1, "input": 1}]}
        }),
        json!([image(json!({
            "a": "[variables('big')]",
            "b": "[variables('nested')]",
            "c": "[variables('wrong')]"
        }))]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "variables.copy[0]: a variables copy entry needs a string 'name', a 'count' and an 'input'",
            "variables.copy[1].count: copy count must be an int from 0 to 800, got 801",
            "variables.copy[2].input: function 'copyIndex' refers to copy loop 'other', but the enclosing loop is 'wrong' (at position 2)",
            "variables.nested.copy: copy loops inside a variable's value are not supported; use the top-level variables 'copy' array",
        ]
    );
}

#[test]
fn variables_section_shape_errors() {
    let doc = template(json!([]), json!("x"), json!([image(json!({}))]));
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "parameters: 'parameters' must be an object, got array",
            "variables: 'variables' must be an object, got string",
        ]
    );
    let doc = template(
        json!({}),
        json!({"a": 1, "A": 2}),
        json!([image(json!({}))]),
    );
    // Whichever spelling comes second in map order is the duplicate.
    let e = errors(&doc, &none());
    assert!(
        e == ["variables.a: variable 'a' is defined more than once"]
            || e == ["variables.A: variable 'A' is defined more than once"],
        "{e:?}"
    );
}

// ---- resources --------------------------------------------------------

#[test]
fn other_resources_are_skipped_without_evaluation() {
    let doc = template(
        json!({}),
        json!({}),
        json!([
            {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "name": "[reference('x')]"},
            {"type": "Microsoft.Authorization/roleAssignments", "name": "[guid(]"},
            "not even an object",
            {"type": "microsoft.virtualmachineimages/IMAGETEMPLATES", "name": "[concat('a', 'b')]"}
        ]),
    );
    let out = run(&doc, &none()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].index, 3);
    assert_eq!(
        out[0].resource,
        json!({"type": "microsoft.virtualmachineimages/IMAGETEMPLATES", "name": "ab"})
    );
}

#[test]
fn multiple_image_templates_keep_their_indexes() {
    let doc = template(
        json!({"base": {"type": "string", "defaultValue": "t"}}),
        json!({}),
        json!([
            {"type": IT, "name": "[concat(parameters('base'), '1')]"},
            {"type": "Microsoft.Compute/galleries", "name": "g"},
            {"type": IT, "name": "[concat(parameters('base'), '2')]"}
        ]),
    );
    let out = run(&doc, &none()).unwrap();
    assert_eq!(
        out,
        vec![
            EvaluatedResource {
                index: 0,
                resource: json!({"type": IT, "name": "t1"}),
                secrets: Vec::new(),
            },
            EvaluatedResource {
                index: 2,
                resource: json!({"type": IT, "name": "t2"}),
                secrets: Vec::new(),
            },
        ]
    );
}

#[test]
fn missing_image_templates_or_resources() {
    let doc = template(
        json!({}),
        json!({}),
        json!([{"type": "Microsoft.Compute/galleries"}]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec!["resources: no Microsoft.VirtualMachineImages/imageTemplates resource was found in the template"]
    );
    // Reported alongside other problems, not instead of them.
    let doc = template(json!({"p": {"type": "int"}}), json!({}), json!([]));
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "parameters.p: missing value for parameter 'p' (declared type int, no defaultValue); supply it with --parameter p=VALUE or a parameters file",
            "resources: no Microsoft.VirtualMachineImages/imageTemplates resource was found in the template",
        ]
    );
    assert_eq!(
        errors(&json!({"parameters": {}}), &none()),
        vec!["resources: the template has no 'resources' array"]
    );
    assert_eq!(
        errors(&json!({"languageVersion": "2.0", "resources": {"img": {"type": IT}}}), &none()),
        vec!["resources: symbolic-name resources (languageVersion 2.0) are not supported; 'resources' must be an array"]
    );
    assert_eq!(
        errors(&json!([]), &none()),
        vec!["(document): a deployment template must be a JSON object"]
    );
}

#[test]
fn conditions_and_copy_on_resources() {
    let doc = template(
        json!({"deploy": {"type": "bool", "defaultValue": false}}),
        json!({}),
        json!([
            {"type": IT, "name": "off", "condition": "[parameters('deploy')]"},
            {"type": IT, "name": "on", "condition": "[not(parameters('deploy'))]"},
            {"type": IT, "name": "literal", "condition": true}
        ]),
    );
    let names: Vec<Value> = run(&doc, &none())
        .unwrap()
        .into_iter()
        .map(|r| r.resource["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("on"), json!("literal")]);

    let doc = template(
        json!({}),
        json!({}),
        json!([{"type": IT, "condition": false}]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec!["resources: every Microsoft.VirtualMachineImages/imageTemplates resource has a condition that is false"]
    );
    let doc = template(
        json!({}),
        json!({}),
        json!([
            {"type": IT, "condition": "[1]"},
            {"type": IT, "copy": {"name": "c", "count": 2}}
        ]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "resources[0].condition: condition must be a bool, got 1",
            "resources[1].copy: copy loops on an imageTemplates resource are not supported",
        ]
    );
}

#[test]
fn errors_point_at_the_exact_string() {
    let doc = template(
        json!({}),
        json!({}),
        json!([image(json!({
            "customize": [
                {"type": "Shell", "inline": ["echo ok"]},
                {"type": "Shell", "inline": ["[concat('echo ', parameters('missing'))]", "[toLower(]"]}
            ]
        }))]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "resources[0].properties.customize[1].inline[0]: parameter 'missing' is not declared in the template (at position 18)",
            "resources[0].properties.customize[1].inline[1]: invalid expression: expected a value at position 10, found the end of the expression (a literal string that starts with '[' and ends with ']' must be written with '[[')",
        ]
    );
}

#[test]
fn malformed_expressions_report_positions() {
    let doc = template(
        json!({}),
        json!({}),
        json!([image(
            json!({"a": "[concat('x', 'y']", "b": "[concat('unterminated)]"})
        )]),
    );
    assert_eq!(
        errors(&doc, &none()),
        vec![
            "resources[0].properties.a: invalid expression: unbalanced parentheses: '(' at position 8 is never closed (a literal string that starts with '[' and ends with ']' must be written with '[[')",
            "resources[0].properties.b: invalid expression: unterminated string literal starting at position 9 (a literal string that starts with '[' and ends with ']' must be written with '[[')",
        ]
    );
}

#[test]
fn escaped_literals_and_non_expression_brackets() {
    let doc = template(
        json!({}),
        json!({}),
        json!([image(json!({
            "inline": [
                "[[ -f /etc/os-release ]",
                "[Net.ServicePointManager]::SecurityProtocol = 'Tls12'",
                "echo [not an expression]"
            ]
        }))]),
    );
    assert_eq!(
        props(&doc, &none())["inline"],
        json!([
            "[ -f /etc/os-release ]",
            "[Net.ServicePointManager]::SecurityProtocol = 'Tls12'",
            "echo [not an expression]"
        ])
    );
}

#[test]
fn custom_environment_flows_into_functions() {
    let env = ArmEnvironment {
        subscription_id: "sub".into(),
        tenant_id: "ten".into(),
        resource_group: "rg".into(),
        location: "westeurope".into(),
    };
    let doc = template(
        json!({}),
        json!({}),
        json!([image(json!({
            "id": "[resourceId('Microsoft.Compute/images', 'x')]",
            "tenant": "[subscription().tenantId]"
        }))]),
    );
    let out = evaluate_deployment(&doc, &none(), &env).unwrap();
    assert_eq!(out[0].resource["location"], "westeurope");
    assert_eq!(
        out[0].resource["properties"],
        json!({
            "id": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/images/x",
            "tenant": "ten"
        })
    );
}

// ---- a realistic Azure Image Builder deployment -----------------------

fn aib_sample() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "imageTemplateName": {"type": "string"},
            "api-version": {"type": "string", "defaultValue": "2022-02-14"},
            "svclocation": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "identityName": {"type": "string", "defaultValue": "aibIdentity"},
            "galleryName": {"type": "string", "defaultValue": "myGallery"},
            "imageDefinitionName": {"type": "string", "defaultValue": "ubuntu2204"},
            "replicationRegions": {"type": "array", "defaultValue": ["westus2", "eastus"]},
            "vmSize": {"type": "string", "defaultValue": "Standard_D2s_v3",
                       "allowedValues": ["Standard_D2s_v3", "Standard_D4s_v3"]},
            "buildTimeoutInMinutes": {"type": "int", "defaultValue": 80, "minValue": 0, "maxValue": 960}
        },
        "variables": {
            "identityId": "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('identityName'))]",
            "galleryImageId": "[concat('/subscriptions/', subscription().subscriptionId, '/resourceGroups/', resourceGroup().name, '/providers/Microsoft.Compute/galleries/', parameters('galleryName'), '/images/', parameters('imageDefinitionName'))]",
            "tags": {"source": "azVmImageBuilder", "baseosimg": "ubuntu2204"}
        },
        "resources": [
            {
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "apiVersion": "2018-11-30",
                "name": "[parameters('identityName')]",
                "location": "[parameters('svclocation')]"
            },
            {
                "type": "Microsoft.Authorization/roleAssignments",
                "apiVersion": "2022-04-01",
                "name": "[guid(resourceGroup().id, variables('identityId'))]",
                "properties": {"principalId": "[reference(variables('identityId')).principalId]"}
            },
            {
                "name": "[parameters('imageTemplateName')]",
                "type": "Microsoft.VirtualMachineImages/imageTemplates",
                "apiVersion": "2022-02-14",
                "location": "[parameters('svclocation')]",
                "dependsOn": ["[variables('identityId')]"],
                "tags": "[variables('tags')]",
                "identity": {
                    "type": "UserAssigned",
                    "userAssignedIdentities": {
                        "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('identityName'))]": {}
                    }
                },
                "properties": {
                    "buildTimeoutInMinutes": "[parameters('buildTimeoutInMinutes')]",
                    "vmProfile": {"vmSize": "[parameters('vmSize')]", "osDiskSizeGB": 30},
                    "source": {
                        "type": "PlatformImage",
                        "publisher": "Canonical",
                        "offer": "0001-com-ubuntu-server-jammy",
                        "sku": "22_04-lts-gen2",
                        "version": "latest"
                    },
                    "customize": [
                        {
                            "type": "Shell",
                            "name": "RunScriptFromSource",
                            "scriptUri": "https://raw.githubusercontent.com/danielsollondon/azvmimagebuilder/master/quickquickstarts/customizeScript.sh"
                        },
                        {
                            "type": "Shell",
                            "name": "setupHostname",
                            "inline": [
                                "[format('echo \"Building {0} in {1}\" > /tmp/build-info', parameters('imageTemplateName'), parameters('svclocation'))]",
                                "sudo mkdir -p /buildArtifacts",
                                "[ -d /buildArtifacts ] && echo ready",
                                "[[ -f /etc/os-release ]"
                            ]
                        }
                    ],
                    "distribute": [
                        {
                            "type": "SharedImage",
                            "galleryImageId": "[variables('galleryImageId')]",
                            "runOutputName": "[concat(parameters('imageTemplateName'), '-sig')]",
                            "artifactTags": {"source": "azureVmImageBuilder", "baseosimg": "ubuntu2204"},
                            "replicationRegions": "[parameters('replicationRegions')]"
                        }
                    ]
                }
            }
        ]
    })
}

#[test]
fn realistic_image_builder_deployment() {
    let mut supplied = SuppliedParameters::default();
    supplied.insert_text("imageTemplateName", "ubuntu-aib");
    let out = run(&aib_sample(), &supplied).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].index, 2);
    let identity_id =
        format!("{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aibIdentity");
    let mut identities = serde_json::Map::new();
    identities.insert(identity_id.clone(), json!({}));
    let expected = json!({
        "name": "ubuntu-aib",
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2022-02-14",
        "location": "local",
        "dependsOn": [identity_id],
        "tags": {"source": "azVmImageBuilder", "baseosimg": "ubuntu2204"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": identities},
        "properties": {
            "buildTimeoutInMinutes": 80,
            "vmProfile": {"vmSize": "Standard_D2s_v3", "osDiskSizeGB": 30},
            "source": {
                "type": "PlatformImage",
                "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts-gen2",
                "version": "latest"
            },
            "customize": [
                {
                    "type": "Shell",
                    "name": "RunScriptFromSource",
                    "scriptUri": "https://raw.githubusercontent.com/danielsollondon/azvmimagebuilder/master/quickquickstarts/customizeScript.sh"
                },
                {
                    "type": "Shell",
                    "name": "setupHostname",
                    "inline": [
                        "echo \"Building ubuntu-aib in local\" > /tmp/build-info",
                        "sudo mkdir -p /buildArtifacts",
                        "[ -d /buildArtifacts ] && echo ready",
                        "[ -f /etc/os-release ]"
                    ]
                }
            ],
            "distribute": [
                {
                    "type": "SharedImage",
                    "galleryImageId": format!("{RG_ID}/providers/Microsoft.Compute/galleries/myGallery/images/ubuntu2204"),
                    "runOutputName": "ubuntu-aib-sig",
                    "artifactTags": {"source": "azureVmImageBuilder", "baseosimg": "ubuntu2204"},
                    "replicationRegions": ["westus2", "eastus"]
                }
            ]
        }
    });
    assert_eq!(out[0].resource, expected);
}

#[test]
fn realistic_deployment_with_parameters_file_and_errors() {
    let file = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "imageTemplateName": {"value": "from-file"},
            "vmSize": {"value": "Standard_D4s_v3"},
            "replicationRegions": {"value": ["northeurope"]}
        }
    });
    let mut supplied = SuppliedParameters::from_parameters_file(&file).unwrap();
    supplied.insert_text("buildTimeoutInMinutes", "120");
    let out = run(&aib_sample(), &supplied).unwrap();
    let p = &out[0].resource["properties"];
    assert_eq!(out[0].resource["name"], "from-file");
    assert_eq!(p["vmProfile"]["vmSize"], "Standard_D4s_v3");
    assert_eq!(p["buildTimeoutInMinutes"], 120);
    assert_eq!(
        p["distribute"][0]["replicationRegions"],
        json!(["northeurope"])
    );

    // Without the required name, with a bad size and an out-of-range timeout.
    let supplied = supplied_text(&[("vmSize", "huge"), ("buildTimeoutInMinutes", "1000")]);
    assert_eq!(
        errors(&aib_sample(), &supplied),
        vec![
            "parameters.buildTimeoutInMinutes: value 1000 for parameter 'buildTimeoutInMinutes' is greater than maxValue 960",
            "parameters.imageTemplateName: missing value for parameter 'imageTemplateName' (declared type string, no defaultValue); supply it with --parameter imageTemplateName=VALUE or a parameters file",
            "parameters.vmSize: value 'huge' for parameter 'vmSize' is not one of the allowed values: 'Standard_D2s_v3', 'Standard_D4s_v3'",
        ]
    );
}

// ---- robustness -------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,40}") {
        let r = TestResolver::default();
        let _ = evaluate_string(&s, "p", &r, EvalContext::default());
        let bracketed = format!("[{s}]");
        let _ = evaluate_string(&bracketed, "p", &r, EvalContext::default());
    }

    #[test]
    fn expression_like_strings_never_panic(
        s in "\\[[a-zA-Z(),'\\[\\] 0-9.-]{0,30}\\]"
    ) {
        let r = TestResolver::default();
        let _ = evaluate_string(&s, "p", &r, EvalContext::default());
    }

    #[test]
    fn quoted_strings_round_trip(s in "[^\\x00]{0,20}") {
        let r = TestResolver::default();
        let expr = format!("['{}']", s.replace('\'', "''"));
        let v = evaluate_string(&expr, "p", &r, EvalContext::default()).unwrap();
        prop_assert_eq!(v, Value::String(s));
    }
}

#[test]
fn every_kind_of_nesting_counts_against_one_limit() {
    use super::deployment::evaluate_deployment_within;
    use super::limits::Limits;
    // resource object, properties, the string, variables('a'), variable a,
    // its value, variables('b'), variable b, its value, concat(...), 'x':
    // eleven levels.
    let doc = template(
        json!({}),
        json!({"a": "[variables('b')]", "b": "[concat('x')]"}),
        json!([image(json!({"x": "[variables('a')]"}))]),
    );
    let within = |max_depth| {
        let limits = Limits {
            max_depth,
            ..Limits::default()
        };
        evaluate_deployment_within(&doc, &none(), &ArmEnvironment::default(), limits)
    };
    assert_eq!(within(11).unwrap()[0].resource["properties"]["x"], "x");
    let errors = within(10).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "variables.b: nested too deeply; at most 10 levels of expressions, template values, parameters and variables can be nested"
    );
}

#[test]
fn once_the_total_is_spent_evaluation_stops_with_one_error() {
    use super::deployment::evaluate_deployment_within;
    use super::limits::Limits;
    let reads: Vec<&str> = vec!["[variables('s')]"; 1000];
    let doc = template(
        json!({}),
        json!({"s": "[padLeft('', 1000, 'a')]"}),
        json!([image(json!({"x": reads}))]),
    );
    let limits = Limits {
        max_total_bytes: 10_000,
        ..Limits::default()
    };
    let errors =
        evaluate_deployment_within(&doc, &none(), &ArmEnvironment::default(), limits).unwrap_err();
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["resources[0].properties.x[8]: function 'variables' exceeded the evaluation budget: a deployment's expressions may produce at most 10000 bytes of values in total (at position 2)"]
    );
}
