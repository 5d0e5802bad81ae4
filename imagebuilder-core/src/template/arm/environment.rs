//! The stand-in Azure context: what `resourceGroup()`, `subscription()`,
//! `deployment()` and `environment()` return when running locally.

use serde_json::{json, Value};

/// What `resourceGroup()` and `subscription()` return during evaluation.
///
/// There is no real subscription when building locally; these values only
/// have to be stable and well-formed so resource IDs built from them parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmEnvironment {
    /// Subscription GUID used in resource IDs and `subscription()`.
    pub subscription_id: String,
    /// Tenant GUID returned by `subscription().tenantId`.
    pub tenant_id: String,
    /// Resource group name used in resource IDs and `resourceGroup()`.
    pub resource_group: String,
    /// Location returned by `resourceGroup().location`.
    pub location: String,
}

impl Default for ArmEnvironment {
    fn default() -> Self {
        ArmEnvironment {
            subscription_id: "00000000-0000-0000-0000-000000000000".to_string(),
            tenant_id: "00000000-0000-0000-0000-000000000000".to_string(),
            resource_group: "imagebuilder".to_string(),
            location: "local".to_string(),
        }
    }
}

/// Name reported by `deployment().name`.
pub(crate) const DEPLOYMENT_NAME: &str = "imagebuilder";

impl ArmEnvironment {
    /// The object returned by `resourceGroup()`.
    pub(crate) fn resource_group_object(&self) -> Value {
        json!({
            "id": format!(
                "/subscriptions/{}/resourceGroups/{}",
                self.subscription_id, self.resource_group
            ),
            "name": self.resource_group,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "properties": { "provisioningState": "Succeeded" }
        })
    }

    /// The object returned by `subscription()`.
    pub(crate) fn subscription_object(&self) -> Value {
        json!({
            "id": format!("/subscriptions/{}", self.subscription_id),
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
            "displayName": "imagebuilder (local)"
        })
    }

    /// The object returned by `deployment()`; `content_version` comes from
    /// the template so `deployment().properties.template.contentVersion` works.
    pub(crate) fn deployment_object(&self, content_version: &str) -> Value {
        json!({
            "name": DEPLOYMENT_NAME,
            "properties": {
                "template": { "contentVersion": content_version },
                "mode": "Incremental",
                "provisioningState": "Accepted"
            }
        })
    }

    /// The object returned by `environment()`: the public-cloud endpoints,
    /// enough for templates that build URLs from suffixes.
    pub(crate) fn environment_object(&self) -> Value {
        json!({
            "name": "AzureCloud",
            "gallery": "https://gallery.azure.com/",
            "graph": "https://graph.windows.net/",
            "portal": "https://portal.azure.com",
            "resourceManager": "https://management.azure.com/",
            "authentication": {
                "loginEndpoint": "https://login.microsoftonline.com/",
                "audiences": [
                    "https://management.core.windows.net/",
                    "https://management.azure.com/"
                ],
                "tenant": "common",
                "identityProvider": "AAD"
            },
            "suffixes": {
                "acrLoginServer": ".azurecr.io",
                "keyvaultDns": ".vault.azure.net",
                "sqlServerHostname": ".database.windows.net",
                "storage": "core.windows.net"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_environment_values() {
        let env = ArmEnvironment::default();
        assert_eq!(env.subscription_id, "00000000-0000-0000-0000-000000000000");
        assert_eq!(env.tenant_id, "00000000-0000-0000-0000-000000000000");
        assert_eq!(env.resource_group, "imagebuilder");
        assert_eq!(env.location, "local");
    }

    #[test]
    fn resource_group_object_has_id_name_location() {
        let env = ArmEnvironment {
            subscription_id: "S".into(),
            tenant_id: "T".into(),
            resource_group: "R".into(),
            location: "westus".into(),
        };
        let rg = env.resource_group_object();
        assert_eq!(rg["id"], "/subscriptions/S/resourceGroups/R");
        assert_eq!(rg["name"], "R");
        assert_eq!(rg["location"], "westus");
        assert_eq!(rg["type"], "Microsoft.Resources/resourceGroups");
        let sub = env.subscription_object();
        assert_eq!(sub["id"], "/subscriptions/S");
        assert_eq!(sub["subscriptionId"], "S");
        assert_eq!(sub["tenantId"], "T");
    }

    #[test]
    fn deployment_object_carries_content_version() {
        let d = ArmEnvironment::default().deployment_object("1.2.3.4");
        assert_eq!(d["name"], "imagebuilder");
        assert_eq!(d["properties"]["template"]["contentVersion"], "1.2.3.4");
    }
}
