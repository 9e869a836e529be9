//! Case flows that need no conversation state: `/bug` and `/feature-request` (flow 6 of the event
//! contract) and telling users about status changes agents make (flow 7).
//!
//! Every output id is derived from the input (`interaction.<id>`, `case-embed.<number>`,
//! `case-receipt.<number>`, `<case event id>.notify`, `<case event id>.embed`), so a redelivered input
//! republishes the same ids and JetStream drops the copies.

use flexcord_kb::Lang;
use flexcord_proto::v1::{
    case_command, discord_outbound, Case, CaseCommand, CaseEvent, CaseKind, CaseOrigin, CaseStatus,
    ConversationMode, DiscordOutbound, DiscordUser, EditOutbound, Embed, EmbedField,
    InteractionRef, OpenCase, OutboundMessage, Severity,
};

use crate::decide::{lang_of, mode_of};
use crate::effects::{discord_key, Effect};
use crate::input::{ReportRequest, ACTOR};
use crate::messages::{self, clean_text, one_line, truncate};
use crate::timestamps::to_proto;

/// The `OpenCase` command of a `/bug` or `/feature-request`.
pub fn open_report(r: &ReportRequest, now: chrono::DateTime<chrono::Utc>) -> Effect {
    let ix = r.command.interaction.clone().unwrap_or_default();
    let opt = |name: &str| r.command.options.get(name).cloned().unwrap_or_default();
    let subject = truncate(&one_line(&opt("title")), 200);
    let description = truncate(&clean_text(&opt("description")), 4000);
    let severity = match opt("severity").trim().to_ascii_lowercase().as_str() {
        "low" | "faible" => Severity::Low,
        "medium" | "moyenne" => Severity::Medium,
        "high" | "haute" | "élevée" | "elevee" => Severity::High,
        "critical" | "critique" => Severity::Critical,
        _ => Severity::Unspecified,
    };
    let mut user = r.user.clone();
    if user.locale.is_empty() {
        user.locale = r.command.locale.clone();
    }
    let user = DiscordUser {
        username: truncate(&one_line(&user.username), 128),
        display_name: truncate(&one_line(&user.display_name), 128),
        locale: truncate(&one_line(&user.locale), 32),
        ..user
    };
    Effect::Case {
        key: format!("interaction:{}", ix.interaction_id),
        command: CaseCommand {
            command_id: format!("interaction.{}", ix.interaction_id),
            issued_at: Some(to_proto(now)),
            actor: ACTOR.to_owned(),
            command: Some(case_command::Command::Open(OpenCase {
                kind: r.kind as i32,
                subject,
                description,
                severity: severity as i32,
                user: Some(user),
                origin: Some(CaseOrigin {
                    channel_id: r.channel_id,
                    interaction_id: ix.interaction_id,
                    conversation_id: String::new(),
                    interaction_token: ix.token,
                    application_id: ix.application_id,
                }),
            })),
        },
    }
}

fn case_lang(case: &Case) -> Lang {
    case.user
        .as_ref()
        .and_then(|u| Lang::from_code(&u.locale))
        .unwrap_or(Lang::En)
}

fn kind_of(case: &Case) -> CaseKind {
    CaseKind::try_from(case.kind).unwrap_or(CaseKind::Unspecified)
}

fn status_of(case: &Case) -> CaseStatus {
    CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Open)
}

/// The embed describing a report case (posted to its channel, edited on status changes).
/// It never carries the case-page link: that link is a credential.
pub fn report_embed(case: &Case, l: Lang) -> Embed {
    let kind = kind_of(case);
    let labels = messages::embed_labels(l, kind);
    let status = status_of(case);
    let severity = Severity::try_from(case.severity).unwrap_or(Severity::Unspecified);
    let color = match (status, kind) {
        (CaseStatus::Resolved, _) => 0x2E_CC71,
        (CaseStatus::Closed, _) => 0x95_A5A6,
        (_, CaseKind::Feature) => 0x34_98DB,
        _ => 0xE7_4C3C,
    };
    let reporter = case
        .user
        .as_ref()
        .map(|u| {
            if u.display_name.trim().is_empty() {
                u.username.clone()
            } else {
                u.display_name.clone()
            }
        })
        .unwrap_or_default();
    let subject = if case.subject.trim().is_empty() {
        labels.footer.to_owned()
    } else {
        one_line(&case.subject)
    };
    let mut fields = vec![EmbedField {
        name: labels.status.to_owned(),
        value: capitalise(messages::status_label(l, status)),
        inline: true,
    }];
    // Severity is a bug's property; a feature request has none worth showing.
    if kind != CaseKind::Feature {
        fields.push(EmbedField {
            name: labels.severity.to_owned(),
            value: messages::severity_label(l, severity).to_owned(),
            inline: true,
        });
    }
    if !reporter.trim().is_empty() {
        fields.push(EmbedField {
            name: labels.reporter.to_owned(),
            value: truncate(&messages::escape_markdown(&one_line(&reporter)), 200),
            inline: true,
        });
    }
    Embed {
        title: truncate(&format!("{} · {}", case.number, subject), 256),
        description: truncate(&clean_text(&case.description), 2000),
        url: String::new(),
        color,
        fields,
        footer: labels.footer.to_owned(),
        timestamp: case.created_at,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Effects of a report case being opened: the embed in its channel and the ephemeral receipt.
pub fn report_opened(case: &Case) -> Vec<Effect> {
    let origin = case.origin.clone().unwrap_or_default();
    let l = case_lang(case);
    let kind = kind_of(case);
    let user_id = case.user.as_ref().map(|u| u.id).unwrap_or(0);
    let mut out = Vec::new();
    if origin.channel_id != 0 {
        out.push(Effect::Discord(DiscordOutbound {
            event_id: format!("case-embed.{}", case.number),
            conversation_id: String::new(),
            target: Some(discord_outbound::Target::ChannelId(origin.channel_id)),
            action: Some(discord_outbound::Action::Send(OutboundMessage {
                embeds: vec![report_embed(case, l)],
                ..Default::default()
            })),
        }));
    }
    let receipt = messages::report_receipt(l, kind, &case.number);
    if origin.interaction_id != 0 && !origin.interaction_token.is_empty() {
        out.push(Effect::Discord(DiscordOutbound {
            event_id: format!("case-receipt.{}", case.number),
            conversation_id: if user_id != 0 {
                format!("user-{user_id}")
            } else {
                String::new()
            },
            target: Some(discord_outbound::Target::Interaction(InteractionRef {
                interaction_id: origin.interaction_id,
                token: origin.interaction_token.clone(),
                application_id: origin.application_id,
                token_expires_at: None,
            })),
            action: Some(discord_outbound::Action::Send(OutboundMessage {
                content: receipt,
                ephemeral: true,
                edit_original_response: true,
                ..Default::default()
            })),
        }));
    } else if user_id != 0 {
        // No interaction to answer (e.g. a case opened by a tool): tell the reporter in a DM.
        out.push(Effect::Discord(DiscordOutbound {
            event_id: format!("case-receipt.{}", case.number),
            conversation_id: format!("user-{user_id}"),
            target: Some(discord_outbound::Target::UserId(user_id)),
            action: Some(discord_outbound::Action::Send(OutboundMessage {
                content: receipt,
                ..Default::default()
            })),
        }));
    }
    out
}

/// Effects of a status change made by someone else than bot-router: the DM to the user and the
/// edit of the report embed. `conversation` is the state of the case's conversation, when it has one.
pub fn status_changed(
    ev: &CaseEvent,
    conversation: Option<&flexcord_proto::v1::ConversationState>,
) -> Vec<Effect> {
    let Some(case) = &ev.case else {
        return Vec::new();
    };
    let Some(flexcord_proto::v1::case_event::Event::StatusChanged(change)) = &ev.event else {
        return Vec::new();
    };
    let to = CaseStatus::try_from(change.to).unwrap_or(CaseStatus::Unspecified);
    if to == CaseStatus::Unspecified {
        return Vec::new();
    }
    let kind = kind_of(case);
    let origin = case.origin.clone().unwrap_or_default();
    let l = conversation.map(lang_of).unwrap_or_else(|| case_lang(case));
    let mut out = Vec::new();
    let is_report = matches!(kind, CaseKind::Bug | CaseKind::Feature);
    let tell_user = if is_report {
        true
    } else {
        // Support cases: only the outcome, and not while the user is talking with an agent about
        // this very case (the agent's own close tells them).
        let live = conversation.is_some_and(|c| {
            matches!(
                mode_of(c),
                ConversationMode::WaitingForAgent | ConversationMode::AgentJoined
            ) && c.case_number == case.number
        });
        matches!(to, CaseStatus::Resolved | CaseStatus::Closed) && !live
    };
    if tell_user {
        let text =
            messages::status_changed(l, kind, &case.number, &case.subject, to, &change.comment);
        let user_id = case.user.as_ref().map(|u| u.id).unwrap_or(0);
        let dm_channel = origin
            .conversation_id
            .parse::<u64>()
            .ok()
            .filter(|c| *c != 0);
        let (target, conversation_id) = match (dm_channel, user_id) {
            (Some(ch), _) => (
                Some(discord_outbound::Target::ChannelId(ch)),
                origin.conversation_id.clone(),
            ),
            (None, id) if id != 0 => (
                Some(discord_outbound::Target::UserId(id)),
                format!("user-{id}"),
            ),
            _ => (None, String::new()),
        };
        if let Some(target) = target {
            out.push(Effect::Discord(DiscordOutbound {
                event_id: format!("{}.notify", ev.event_id),
                conversation_id,
                target: Some(target),
                action: Some(discord_outbound::Action::Send(OutboundMessage {
                    content: text,
                    ..Default::default()
                })),
            }));
        }
    }
    if is_report && origin.channel_id != 0 {
        out.push(Effect::Discord(DiscordOutbound {
            event_id: format!("{}.embed", ev.event_id),
            conversation_id: String::new(),
            target: Some(discord_outbound::Target::ChannelId(origin.channel_id)),
            action: Some(discord_outbound::Action::Edit(EditOutbound {
                original_event_id: format!("case-embed.{}", case.number),
                message: Some(OutboundMessage {
                    embeds: vec![report_embed(case, case_lang(case))],
                    ..Default::default()
                }),
            })),
        }));
    }
    out
}

/// The bus key and id of an effect these flows produce (only publishes).
pub fn publish_target(e: &Effect) -> Option<(&'static flexcord_bus::StreamSpec, String, String)> {
    use flexcord_bus::topology::{CASE_CMD, DISCORD_OUT};
    match e {
        Effect::Discord(d) => Some((&DISCORD_OUT, discord_key(d), d.event_id.clone())),
        Effect::Case { key, command } => Some((&CASE_CMD, key.clone(), command.command_id.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flexcord_proto::v1::{case_event, CaseStatusChanged, CommandInvoked};

    fn bug_case() -> Case {
        Case {
            number: "CASE-000042".into(),
            kind: CaseKind::Bug as i32,
            status: CaseStatus::Open as i32,
            subject: "Crash on start".into(),
            description: "It crashes".into(),
            severity: Severity::High as i32,
            user: Some(DiscordUser {
                id: 5,
                username: "neo".into(),
                locale: "fr".into(),
                ..Default::default()
            }),
            origin: Some(CaseOrigin {
                channel_id: 300,
                interaction_id: 11,
                interaction_token: "tok".into(),
                application_id: 9,
                ..Default::default()
            }),
            url: "https://cases.example/secret-link".into(),
            ..Default::default()
        }
    }

    #[test]
    fn report_open_command_follows_the_contract() {
        let mut options = std::collections::HashMap::new();
        options.insert("title".to_owned(), "Crash\non start".to_owned());
        options.insert("description".to_owned(), "x".repeat(5000));
        options.insert("severity".to_owned(), "critical".to_owned());
        let r = ReportRequest {
            event_id: "discord.ix.11".into(),
            kind: CaseKind::Bug,
            user: DiscordUser {
                id: 5,
                ..Default::default()
            },
            channel_id: 300,
            command: CommandInvoked {
                interaction: Some(InteractionRef {
                    interaction_id: 11,
                    token: "tok".into(),
                    application_id: 9,
                    token_expires_at: None,
                }),
                options,
                locale: "fr".into(),
                ..Default::default()
            },
        };
        let Effect::Case { key, command } = open_report(&r, chrono::Utc::now()) else {
            panic!()
        };
        assert_eq!(key, "interaction:11");
        assert_eq!(command.command_id, "interaction.11");
        let Some(case_command::Command::Open(open)) = command.command else {
            panic!()
        };
        assert_eq!(open.subject, "Crash on start");
        assert_eq!(open.description.chars().count(), 4000);
        assert_eq!(open.severity, Severity::Critical as i32);
        assert_eq!(open.user.unwrap().locale, "fr");
        let o = open.origin.unwrap();
        assert_eq!(
            (o.channel_id, o.interaction_id, o.application_id),
            (300, 11, 9)
        );
        assert_eq!(o.interaction_token, "tok");
    }

    #[test]
    fn opened_report_posts_embed_and_receipt_without_the_case_link() {
        let fx = report_opened(&bug_case());
        assert_eq!(fx.len(), 2);
        let Effect::Discord(embed) = &fx[0] else {
            panic!()
        };
        assert_eq!(embed.event_id, "case-embed.CASE-000042");
        assert_eq!(discord_key(embed), "300");
        let Some(discord_outbound::Action::Send(m)) = &embed.action else {
            panic!()
        };
        assert_eq!(m.embeds[0].title, "CASE-000042 · Crash on start");
        assert!(m.embeds[0].url.is_empty());
        assert!(!format!("{m:?}").contains("secret-link"));
        let Effect::Discord(receipt) = &fx[1] else {
            panic!()
        };
        assert_eq!(discord_key(receipt), "ix-11");
        let Some(discord_outbound::Action::Send(m)) = &receipt.action else {
            panic!()
        };
        assert!(m.ephemeral && m.edit_original_response);
        assert!(m.content.contains("CASE-000042"));
        assert!(m.content.starts_with("Merci"));
    }

    #[test]
    fn status_change_tells_the_user_and_edits_the_embed() {
        let mut case = bug_case();
        case.status = CaseStatus::Resolved as i32;
        let ev = CaseEvent {
            event_id: "evt-1".into(),
            case: Some(case),
            event: Some(case_event::Event::StatusChanged(CaseStatusChanged {
                from: CaseStatus::Open as i32,
                to: CaseStatus::Resolved as i32,
                comment: "Fixed".into(),
                actor: "api".into(),
            })),
            ..Default::default()
        };
        let fx = status_changed(&ev, None);
        assert_eq!(fx.len(), 2);
        let Effect::Discord(dm) = &fx[0] else {
            panic!()
        };
        assert_eq!(dm.event_id, "evt-1.notify");
        assert_eq!(discord_key(dm), "user-5");
        let Effect::Discord(edit) = &fx[1] else {
            panic!()
        };
        let Some(discord_outbound::Action::Edit(e)) = &edit.action else {
            panic!()
        };
        assert_eq!(e.original_event_id, "case-embed.CASE-000042");
        assert_eq!(
            e.message.as_ref().unwrap().embeds[0].fields[0].value,
            "Résolu"
        );
    }
}

#[cfg(test)]
mod embed_fields_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn case_of(kind: CaseKind) -> Case {
        Case {
            number: "CASE-000007".into(),
            kind: kind as i32,
            status: CaseStatus::Open as i32,
            subject: "Dark mode".into(),
            severity: Severity::High as i32,
            ..Default::default()
        }
    }

    #[test]
    fn bug_embeds_show_severity_and_feature_embeds_do_not() {
        let names = |k| -> Vec<String> {
            report_embed(&case_of(k), Lang::En)
                .fields
                .into_iter()
                .map(|f| f.name)
                .collect()
        };
        assert!(
            names(CaseKind::Bug).iter().any(|n| n == "Severity"),
            "{:?}",
            names(CaseKind::Bug)
        );
        assert!(!names(CaseKind::Feature).iter().any(|n| n == "Severity"));
    }
}
