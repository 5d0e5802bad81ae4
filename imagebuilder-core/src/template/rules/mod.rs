//! Value rules of the AIB template schema: patterns, durations and ARM resource id shapes.
//! Pure functions, so the parser, the engine and the CLI apply one definition of each rule.

mod duration;
mod resource_id;
mod security;
mod text;

pub use duration::{parse_duration, DurationText, InvalidDuration};
pub use resource_id::{GalleryImageId, ResourceIdShape};
pub use security::{check_security_types, SecurityTypeError};
pub use text::{
    is_date_or_time, is_gallery_version, is_placeholder, is_run_output_name, is_sha256_hex,
};
