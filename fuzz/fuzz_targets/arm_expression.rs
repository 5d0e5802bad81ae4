//! The ARM deployment evaluator on any expression: the input becomes a variable's
//! `[expression]` and the template's location refers to it, so it is evaluated.
#![no_main]

use imagebuilder_core::template::{parse_value, ParseOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(expression) = std::str::from_utf8(data) else {
        return;
    };
    let deployment = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"p": {"type": "string", "defaultValue": "value"}},
        "variables": {"v": format!("[{expression}]")},
        "resources": [{
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2024-02-01",
            "name": "fuzz",
            "location": "[variables('v')]",
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "P", "offer": "O", "sku": "S", "version": "latest"},
                "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
            }
        }]
    });
    let _ = parse_value(&deployment, &ParseOptions::default());
});
