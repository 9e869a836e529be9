//! Buttons the bot puts under its messages and the `custom_id`s they come back with.
//!
//! | custom id | meaning |
//! | --- | --- |
//! | `handoff` | "Talk to an agent" |
//! | `csat.<case number>.<1..5>` | CSAT rating of a closed conversation |
//! | `csat.<case number>.skip` | no CSAT comment, thanks |

use flexcord_kb::Lang;
use flexcord_proto::v1::{ActionRow, Button, ButtonStyle};

use crate::messages;

/// `custom_id` of the "Talk to an agent" button.
pub const HANDOFF: &str = "handoff";

/// What a clicked button asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonAction {
    /// Talk to a person.
    Handoff,
    /// A CSAT rating (1..=5) for a case.
    CsatRating {
        /// Case number.
        case: String,
        /// 1..=5.
        rating: u32,
    },
    /// No CSAT comment.
    CsatSkip {
        /// Case number.
        case: String,
    },
}

/// Parses a `custom_id`; `None` for ids this bot did not make.
pub fn parse(custom_id: &str) -> Option<ButtonAction> {
    if custom_id == HANDOFF {
        return Some(ButtonAction::Handoff);
    }
    let rest = custom_id.strip_prefix("csat.")?;
    let (case, what) = rest.rsplit_once('.')?;
    if case.is_empty()
        || case.len() > 64
        || !case.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    if what == "skip" {
        return Some(ButtonAction::CsatSkip {
            case: case.to_owned(),
        });
    }
    let rating: u32 = what.parse().ok()?;
    (1..=5).contains(&rating).then(|| ButtonAction::CsatRating {
        case: case.to_owned(),
        rating,
    })
}

/// The row with the "Talk to an agent" button.
pub fn handoff_row(l: Lang) -> ActionRow {
    ActionRow {
        buttons: vec![Button {
            custom_id: HANDOFF.to_owned(),
            label: messages::handoff_button(l).to_owned(),
            style: ButtonStyle::Primary as i32,
            url: String::new(),
            disabled: false,
        }],
    }
}

/// The row of CSAT buttons 1..5; with `chosen`, every button is disabled and the chosen one green.
pub fn csat_row(case: &str, chosen: Option<u32>) -> ActionRow {
    ActionRow {
        buttons: (1..=5u32)
            .map(|r| Button {
                custom_id: format!("csat.{case}.{r}"),
                label: r.to_string(),
                style: if chosen == Some(r) {
                    ButtonStyle::Success as i32
                } else {
                    ButtonStyle::Secondary as i32
                },
                url: String::new(),
                disabled: chosen.is_some(),
            })
            .collect(),
    }
}

/// The row with the "Skip" (no comment) button.
pub fn csat_skip_row(l: Lang, case: &str) -> ActionRow {
    ActionRow {
        buttons: vec![Button {
            custom_id: format!("csat.{case}.skip"),
            label: messages::skip_button(l).to_owned(),
            style: ButtonStyle::Secondary as i32,
            url: String::new(),
            disabled: false,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip() {
        assert_eq!(parse("handoff"), Some(ButtonAction::Handoff));
        assert_eq!(
            parse("csat.CASE-000123.4"),
            Some(ButtonAction::CsatRating {
                case: "CASE-000123".into(),
                rating: 4
            })
        );
        assert_eq!(
            parse("csat.CASE-000123.skip"),
            Some(ButtonAction::CsatSkip {
                case: "CASE-000123".into()
            })
        );
        for bad in [
            "csat.CASE-1.0",
            "csat.CASE-1.6",
            "csat..3",
            "csat.CASE 1.3",
            "csat.x",
            "other",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let row = csat_row("CASE-000007", None);
        assert_eq!(row.buttons.len(), 5);
        assert_eq!(row.buttons[2].custom_id, "csat.CASE-000007.3");
        for b in &row.buttons {
            assert!(parse(&b.custom_id).is_some());
        }
        assert!(csat_row("CASE-000007", Some(2))
            .buttons
            .iter()
            .all(|b| b.disabled));
    }
}
