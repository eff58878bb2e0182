//! The embedded chart font. plotters is built without its `ttf` feature (which needs
//! fontconfig and system fonts, BUILD.md), so text is laid out and rasterised with ab_glyph from
//! DejaVu Sans compiled into the binary, registered once as plotters' "sans-serif".

use std::sync::OnceLock;

use plotters::style::FontStyle;

use super::RenderError;

/// DejaVu Sans 2.37 (Bitstream Vera licence, see `assets/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name every chart asks plotters for.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters the first time it is called; later calls return the
/// first call's outcome. Every render entry point calls it before drawing.
pub(crate) fn ensure_registered() -> Result<(), RenderError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok { Ok(()) } else { Err(RenderError::Font) }
}
