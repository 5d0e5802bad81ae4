//! Template parsing and validation of any text: every input ends in a template or a list of
//! diagnostics, never a panic, a hang or unbounded memory.
#![no_main]

use imagebuilder_core::template::{parse_document, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_document(text, &ParseOptions::default());
    }
});
