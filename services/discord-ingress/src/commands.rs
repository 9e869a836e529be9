//! The slash commands (definitions with French localizations), their registration, and turning an
//! invocation back into the contract's [`SlashCommand`].

use flexcord_proto::v1::SlashCommand;
use serde_json::{json, Value};
use tracing::info;

use crate::rest::{Body, DiscordRest, RestError, Route};

/// Base name of `/helpme`.
pub const HELPME: &str = "helpme";
/// Base name of `/bug`.
pub const BUG: &str = "bug";
/// Base name of `/feature-request`.
pub const FEATURE_REQUEST: &str = "feature-request";

/// French names, as registered in `name_localizations.fr`.
const FR_NAMES: [(&str, &str); 3] = [
    (HELPME, "aidemoi"),
    (BUG, "bogue"),
    (FEATURE_REQUEST, "nouvelle_fonctionnalite"),
];

/// Canonical option names (the ones Discord sends, whatever the user's language).
pub mod options {
    /// Short title of a report.
    pub const TITLE: &str = "title";
    /// Free text of a report.
    pub const DESCRIPTION: &str = "description";
    /// Bug severity: `low`, `medium`, `high`, `critical`.
    pub const SEVERITY: &str = "severity";
}

fn string_option(
    name: &str,
    fr: &str,
    desc: &str,
    desc_fr: &str,
    required: bool,
    max_length: u32,
) -> Value {
    json!({
        "type": 3,
        "name": name,
        "name_localizations": {"fr": fr},
        "description": desc,
        "description_localizations": {"fr": desc_fr},
        "required": required,
        "max_length": max_length,
    })
}

/// The command definitions (bulk-overwrite body). `global` adds the DM context to `/helpme`.
pub fn definitions(global: bool) -> Value {
    let guild_only = json!([0]);
    let helpme_contexts = if global { json!([0, 1]) } else { json!([0]) };
    let severity = json!({
        "type": 3,
        "name": options::SEVERITY,
        "name_localizations": {"fr": "gravite"},
        "description": "How bad is it?",
        "description_localizations": {"fr": "Quelle est la gravité ?"},
        "required": false,
        "choices": [
            {"name": "Low", "name_localizations": {"fr": "Faible"}, "value": "low"},
            {"name": "Medium", "name_localizations": {"fr": "Moyenne"}, "value": "medium"},
            {"name": "High", "name_localizations": {"fr": "Élevée"}, "value": "high"},
            {"name": "Critical", "name_localizations": {"fr": "Critique"}, "value": "critical"}
        ]
    });
    json!([
        {
            "type": 1,
            "name": HELPME,
            "name_localizations": {"fr": "aidemoi"},
            "description": "Talk to our support team in a private message",
            "description_localizations": {"fr": "Parler à notre équipe d'assistance en message privé"},
            "contexts": helpme_contexts,
            "integration_types": [0],
        },
        {
            "type": 1,
            "name": BUG,
            "name_localizations": {"fr": "bogue"},
            "description": "Report a bug",
            "description_localizations": {"fr": "Signaler un bogue"},
            "contexts": guild_only,
            "integration_types": [0],
            "options": [
                string_option(options::TITLE, "titre", "Short summary of the problem", "Résumé court du problème", true, 100),
                string_option(options::DESCRIPTION, "description", "What happened, and how to reproduce it", "Ce qui s'est passé, et comment le reproduire", true, 1800),
                severity,
            ],
        },
        {
            "type": 1,
            "name": FEATURE_REQUEST,
            "name_localizations": {"fr": "nouvelle_fonctionnalite"},
            "description": "Suggest a new feature",
            "description_localizations": {"fr": "Proposer une nouvelle fonctionnalité"},
            "contexts": guild_only,
            "integration_types": [0],
            "options": [
                string_option(options::TITLE, "titre", "Short summary of the idea", "Résumé court de l'idée", true, 100),
                string_option(options::DESCRIPTION, "description", "What you would like, and why", "Ce que vous aimeriez, et pourquoi", true, 1800),
            ],
        }
    ])
}

/// Registers (bulk-overwrites) the commands: in `guild_id` when given (instant updates), else
/// globally. Idempotent: Discord keeps ids of unchanged commands. Returns how many were registered.
pub async fn register(
    rest: &DiscordRest,
    application_id: u64,
    guild_id: Option<u64>,
) -> Result<usize, RestError> {
    let route = match guild_id {
        Some(g) => Route::put_guild_commands(application_id, g),
        None => Route::put_global_commands(application_id),
    };
    let registered: Vec<Value> = rest
        .send_json(&route, Body::json(&definitions(guild_id.is_none())))
        .await?;
    info!(
        count = registered.len(),
        guild_id = guild_id.unwrap_or(0),
        "Slash commands registered."
    );
    Ok(registered.len())
}

/// The contract's command for a base name.
pub fn from_name(name: &str) -> SlashCommand {
    match name {
        HELPME => SlashCommand::Helpme,
        BUG => SlashCommand::Bug,
        FEATURE_REQUEST => SlashCommand::FeatureRequest,
        _ => SlashCommand::Unspecified,
    }
}

/// The name the user saw in their language (Discord only sends the base name).
pub fn localized_name(base: &str, locale: &str) -> String {
    if is_french(locale) {
        if let Some((_, fr)) = FR_NAMES.iter().find(|(b, _)| *b == base) {
            return (*fr).to_owned();
        }
    }
    base.to_owned()
}

/// True for French locales (`fr`, `fr-FR`, `fr-CA`...).
pub fn is_french(locale: &str) -> bool {
    locale.eq_ignore_ascii_case("fr") || locale.to_ascii_lowercase().starts_with("fr-")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn definitions_have_french_names_and_canonical_options() {
        let d = definitions(true);
        let cmds = d.as_array().cloned().unwrap_or_default();
        assert_eq!(cmds.len(), 3);
        let names: Vec<(&str, &str)> = cmds
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or(""),
                    c["name_localizations"]["fr"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("helpme", "aidemoi"),
                ("bug", "bogue"),
                ("feature-request", "nouvelle_fonctionnalite")
            ]
        );
        let bug_options: Vec<&str> = cmds[1]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(bug_options, vec!["title", "description", "severity"]);
        assert_eq!(cmds[1]["options"][2]["required"], false);
        assert_eq!(definitions(false)[0]["contexts"], json!([0]));
    }

    #[test]
    fn names_map_back_to_the_contract() {
        assert_eq!(from_name("helpme"), SlashCommand::Helpme);
        assert_eq!(from_name("feature-request"), SlashCommand::FeatureRequest);
        assert_eq!(from_name("other"), SlashCommand::Unspecified);
        assert_eq!(localized_name("helpme", "fr"), "aidemoi");
        assert_eq!(localized_name("helpme", "en-US"), "helpme");
        assert!(is_french("fr-CA") && !is_french("fi"));
    }
}
