//! Any text as an image reference: never a panic; a parsed reference prints (full form)
//! to text that parses to the same, and its familiar form too unless it is a Hub path whose
//! first component looks like a domain (docker's FamiliarName has the same ambiguity).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocishim::image::reference::{Reference, NAME_MAX};

fuzz_target!(|s: &str| {
    let Ok(r) = Reference::parse(s) else {
        return;
    };
    assert!(r.name().len() <= NAME_MAX);
    assert!(r.tag.is_some() || r.digest.is_some());
    let full = r.to_string();
    assert_eq!(Reference::parse(&full), Ok(r.clone()), "{s:?} -> {full:?}");
    let first = r.path.split('/').next().unwrap_or("");
    let ambiguous = r.domain == "docker.io" && (first.contains(['.', ':']) || first == "localhost");
    if !ambiguous {
        let familiar = r.familiar();
        assert_eq!(Reference::parse(&familiar), Ok(r), "{s:?} -> {familiar:?}");
    }
});
