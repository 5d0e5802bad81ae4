//! Image templates: the AIB model, the shapes a document comes in, and validation.
//!
//! ```
//! use imagebuilder_core::template::{parse_document, ParseOptions};
//!
//! let text = r#"{
//!   "type": "Microsoft.VirtualMachineImages/imageTemplates",
//!   "apiVersion": "2024-02-01",
//!   "location": "westus2",
//!   "properties": {
//!     "source": {"type": "PlatformImage", "publisher": "Canonical",
//!                "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
//!     "customize": [{"type": "Shell", "inline": ["sudo apt-get update"]}],
//!     "distribute": [{"type": "VHD", "runOutputName": "jammy-vhd"}]
//!   }
//! }"#;
//! let doc = parse_document(text, &ParseOptions::default()).expect("valid template");
//! let template = &doc.templates[0];
//! assert_eq!(template.properties.effective_build_timeout_minutes(), 240);
//! ```

mod api_version;
pub mod arm;
mod diagnostics;
mod input;
mod local_effect;
pub mod model;
mod parse;
pub mod rules;

pub use api_version::{ApiVersion, UnknownApiVersion};
pub use diagnostics::{Diagnostic, Diagnostics, ErrorCode, Path, Severity};
pub use input::{parse_document, parse_value, InputShape, ParseOptions, TemplateDocument};
pub use model::ImageTemplate;
