//! QR codes of codes, tickets and identities, drawn with Unicode half blocks (two
//! modules per character cell) so a phone can scan them off the terminal. Only for a
//! person at a terminal: never into `--json` output or a pipe.

use qrcode::render::unicode::Dense1x2;

/// The QR code of `text` as lines of half blocks, light modules drawn as blocks so it
/// scans on a dark terminal; None when the text is too long for a QR code.
pub(crate) fn render(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

/// What to draw under the text, if anything: only when asked for and the output is a
/// terminal.
pub(crate) fn for_terminal(text: &str, wanted: bool, terminal: bool) -> Option<String> {
    if wanted && terminal { render(text) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_blocks_two_modules_per_line() {
        let art = render("7-guitar-orbit").unwrap_or_default();
        let lines: Vec<&str> = art.lines().collect();
        // Version 1 (21 modules) with a 4-module quiet zone on each side: 29 x 29,
        // drawn as 29 columns by 15 lines.
        let width = lines.first().map_or(0, |l| l.chars().count());
        assert_eq!(width, 29, "{art}");
        assert_eq!(lines.len(), 15, "{art}");
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert!(art.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n')), "{art}");
    }

    #[test]
    fn a_ticket_fits() {
        let ticket = format!("veil1-{}", "a".repeat(180));
        let art = render(&ticket).unwrap_or_default();
        assert!(art.lines().count() > 15);
    }

    #[test]
    fn skipped_off_a_terminal_or_when_not_wanted() {
        assert!(for_terminal("7-guitar-orbit", true, false).is_none());
        assert!(for_terminal("7-guitar-orbit", false, true).is_none());
        assert!(for_terminal("7-guitar-orbit", true, true).is_some());
    }
}
