//! `ImageRef::parse` on arbitrary text: it never panics, and a valid reference prints as
//! text that parses back to the same reference (and prints the same again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullgate::reference::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(image) = ImageRef::parse(text) else {
        return;
    };
    let printed = image.to_string();
    let again = ImageRef::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, image, "{text:?} -> {printed:?}");
    assert_eq!(again.to_string(), printed, "{text:?}");
    // The accessors agree with the printed form.
    assert!(printed.starts_with(image.domain()));
    assert_eq!(image.host_key(), image.domain().to_ascii_lowercase());
    assert!(!image.path().is_empty());
});
