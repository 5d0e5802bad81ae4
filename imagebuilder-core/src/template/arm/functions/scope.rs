//! Deployment-context functions: resourceGroup, subscription, resourceId,
//! subscriptionResourceId, deployment, environment, copyIndex.

use serde_json::Value;

use super::{Args, CallContext};

/// `resourceGroup()`: the stand-in resource group.
pub(crate) fn resource_group(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(c.env.resource_group_object())
}

/// `subscription()`: the stand-in subscription.
pub(crate) fn subscription(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(c.env.subscription_object())
}

/// `deployment()`: a minimal deployment object named `imagebuilder`.
pub(crate) fn deployment(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(c.env.deployment_object(c.content_version))
}

/// `environment()`: public-cloud endpoints.
pub(crate) fn environment(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(c.env.environment_object())
}

/// Splits resourceId-style arguments into (scope arguments, provider path).
///
/// The resource type is the first argument containing `/`; the arguments
/// before it select the scope and the ones after it are the names, one per
/// type segment after the namespace (`a/b` counts as two names).
fn split_resource_args<'v>(
    a: &'v Args<'_>,
    max_scope_args: usize,
) -> Result<(Vec<&'v str>, String), String> {
    let strings: Vec<&str> = (0..a.len())
        .map(|i| a.string(i))
        .collect::<Result<_, _>>()?;
    let t = strings.iter().position(|s| s.contains('/')).ok_or_else(|| {
        a.error("expects a resource type such as 'Microsoft.ManagedIdentity/userAssignedIdentities'")
    })?;
    if t > max_scope_args {
        return Err(a.error(format!(
            "expects at most {max_scope_args} argument(s) before the resource type, got {t}"
        )));
    }
    let resource_type = strings[t];
    let segments: Vec<&str> = resource_type.split('/').collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return Err(a.error(format!("got an invalid resource type '{resource_type}'")));
    }
    let names: Vec<&str> = strings[t + 1..].iter().flat_map(|n| n.split('/')).collect();
    let needed = segments.len() - 1;
    if names.len() != needed || names.iter().any(|n| n.is_empty()) {
        return Err(a.error(format!(
            "resource type '{resource_type}' needs {needed} non-empty resource name(s), got {}",
            names.len()
        )));
    }
    let mut provider = format!("/providers/{}", segments[0]);
    for (ty, name) in segments[1..].iter().zip(&names) {
        provider.push_str(&format!("/{ty}/{name}"));
    }
    Ok((strings[..t].to_vec(), provider))
}

/// `resourceId([subscriptionId], [resourceGroupName], resourceType, name1, ...)`.
pub(crate) fn resource_id(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(2)?;
    let (scope, provider) = split_resource_args(a, 2)?;
    let (sub, rg) = match scope.as_slice() {
        [] => (
            c.env.subscription_id.as_str(),
            c.env.resource_group.as_str(),
        ),
        [rg] => (c.env.subscription_id.as_str(), *rg),
        [sub, rg, ..] => (*sub, *rg),
    };
    Ok(Value::String(format!(
        "/subscriptions/{sub}/resourceGroups/{rg}{provider}"
    )))
}

/// `subscriptionResourceId([subscriptionId], resourceType, name1, ...)`.
pub(crate) fn subscription_resource_id(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(2)?;
    let (scope, provider) = split_resource_args(a, 1)?;
    let sub = scope.first().copied().unwrap_or(&c.env.subscription_id);
    Ok(Value::String(format!("/subscriptions/{sub}{provider}")))
}

/// `copyIndex([loopName], [offset])`: only inside a variable copy loop.
pub(crate) fn copy_index(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.between(0, 2)?;
    let Some(copy) = c.copy else {
        return Err(a.error("can only be used inside a variables copy loop"));
    };
    let (name, offset) = match a.len() {
        0 => (None, 0),
        1 => match a.get(0) {
            Value::String(s) => (Some(s.as_str()), 0),
            _ => (None, a.int(0)?),
        },
        _ => (Some(a.string(0)?), a.int(1)?),
    };
    if let Some(name) = name {
        if !name.eq_ignore_ascii_case(copy.name) {
            return Err(a.error(format!(
                "refers to copy loop '{name}', but the enclosing loop is '{}'",
                copy.name
            )));
        }
    }
    copy.index
        .checked_add(offset)
        .map(Value::from)
        .ok_or_else(|| a.error("overflowed"))
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    const RG: &str =
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/imagebuilder";

    #[test]
    fn context_objects() {
        assert_eq!(eval("[resourceGroup().id]"), json!(RG));
        assert_eq!(eval("[resourceGroup().name]"), json!("imagebuilder"));
        assert_eq!(
            eval("[subscription().id]"),
            json!("/subscriptions/00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(
            eval("[subscription().tenantId]"),
            json!("00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(eval("[deployment().name]"), json!("imagebuilder"));
        assert_eq!(
            eval("[deployment().properties.template.contentVersion]"),
            json!("1.0.0.0")
        );
        assert_eq!(eval("[environment().name]"), json!("AzureCloud"));
        assert_eq!(
            eval("[environment().suffixes.storage]"),
            json!("core.windows.net")
        );
        assert_eq!(
            eval_err("[resourceGroup('x')]"),
            "expr: function 'resourceGroup' expects 0 arguments, got 1 (at position 2)"
        );
    }

    #[test]
    fn resource_id_in_current_scope() {
        assert_eq!(
            eval("[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id1')]"),
            json!(format!(
                "{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
            ))
        );
        assert_eq!(
            eval("[resourceId('Microsoft.Compute/galleries/images', 'gal', 'img')]"),
            json!(format!(
                "{RG}/providers/Microsoft.Compute/galleries/gal/images/img"
            ))
        );
        assert_eq!(
            eval("[resourceId('Microsoft.Compute/galleries/images', 'gal/img')]"),
            json!(format!(
                "{RG}/providers/Microsoft.Compute/galleries/gal/images/img"
            ))
        );
    }

    #[test]
    fn resource_id_with_explicit_scope() {
        assert_eq!(
            eval("[resourceId('otherRg', 'Microsoft.Network/virtualNetworks/subnets', 'vnet', 'sn')]"),
            json!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/otherRg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sn")
        );
        assert_eq!(
            eval("[resourceId('S2', 'R2', 'Microsoft.Storage/storageAccounts', 'st')]"),
            json!("/subscriptions/S2/resourceGroups/R2/providers/Microsoft.Storage/storageAccounts/st")
        );
        assert_eq!(
            eval("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'abc')]"),
            json!("/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/abc")
        );
    }

    #[test]
    fn resource_id_errors() {
        assert_eq!(
            eval_err("[resourceId('Microsoft.Compute/galleries/images', 'gal')]"),
            "expr: function 'resourceId' resource type 'Microsoft.Compute/galleries/images' needs 2 non-empty resource name(s), got 1 (at position 2)"
        );
        assert_eq!(
            eval_err("[resourceId('a', 'b')]"),
            "expr: function 'resourceId' expects a resource type such as 'Microsoft.ManagedIdentity/userAssignedIdentities' (at position 2)"
        );
        assert_eq!(
            eval_err("[resourceId('a', 'b', 'c', 'X.Y/z', 'n')]"),
            "expr: function 'resourceId' expects at most 2 argument(s) before the resource type, got 3 (at position 2)"
        );
        assert_eq!(
            eval_err("[resourceId('Microsoft.X/y', 1)]"),
            "expr: function 'resourceId' expects argument 2 to be a string, got int (at position 2)"
        );
        assert_eq!(
            eval_err("[resourceId('Microsoft.X/', 'n')]"),
            "expr: function 'resourceId' got an invalid resource type 'Microsoft.X/' (at position 2)"
        );
    }

    #[test]
    fn copy_index_outside_a_loop_is_an_error() {
        assert_eq!(
            eval_err("[copyIndex()]"),
            "expr: function 'copyIndex' can only be used inside a variables copy loop (at position 2)"
        );
    }
}
