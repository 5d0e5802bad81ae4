//! Options shared by every command that reads templates: ARM parameters and environment.

use std::path::PathBuf;

use clap::Args;
use imagebuilder::template::arm::{ArmEnvironment, SuppliedParameters};
use imagebuilder::template::{ApiVersion, ParseOptions};

use super::UsageError;

/// How to read template documents.
#[derive(Debug, Args)]
pub(crate) struct TemplateInputArgs {
    /// Value of an ARM deployment parameter, NAME=VALUE (repeatable; wins over the file).
    #[arg(long = "parameter", short = 'p', value_name = "NAME=VALUE")]
    parameters: Vec<String>,

    /// ARM parameters file (deploymentParameters.json format).
    #[arg(long, value_name = "FILE")]
    parameters_file: Option<PathBuf>,

    /// api-version for documents that name none (default: newest schema, lenient names).
    #[arg(long, value_name = "VERSION")]
    api_version: Option<ApiVersion>,

    /// Region returned by `resourceGroup().location` in ARM expressions.
    #[arg(long, value_name = "REGION", default_value_t = ArmEnvironment::default().location)]
    location: String,

    /// Id returned by `subscription().subscriptionId` in ARM expressions.
    #[arg(long, value_name = "ID", default_value_t = ArmEnvironment::default().subscription_id)]
    subscription_id: String,

    /// Name returned by `resourceGroup().name` in ARM expressions.
    #[arg(long, value_name = "NAME", default_value_t = ArmEnvironment::default().resource_group)]
    resource_group: String,
}

impl TemplateInputArgs {
    /// The parse options these arguments describe; reads the parameters file.
    pub(crate) fn parse_options(&self) -> Result<ParseOptions, UsageError> {
        let mut parameters = match &self.parameters_file {
            Some(path) => read_parameters_file(path)?,
            None => SuppliedParameters::default(),
        };
        for pair in &self.parameters {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                UsageError(format!(
                    "--parameter '{pair}' is not of the form NAME=VALUE"
                ))
            })?;
            if name.is_empty() {
                return Err(UsageError(format!(
                    "--parameter '{pair}' has an empty NAME"
                )));
            }
            parameters.insert_text(name, value);
        }
        let environment = ArmEnvironment {
            location: self.location.clone(),
            subscription_id: self.subscription_id.clone(),
            resource_group: self.resource_group.clone(),
            ..ArmEnvironment::default()
        };
        Ok(ParseOptions {
            parameters,
            environment,
            default_api_version: self.api_version,
        })
    }
}

fn read_parameters_file(path: &PathBuf) -> Result<SuppliedParameters, UsageError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read parameters file {shown}: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "parameters file {shown} is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    SuppliedParameters::from_parameters_file(&value).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        UsageError(format!(
            "parameters file {shown} is not usable:\n{}",
            lines.join("\n")
        ))
    })
}
