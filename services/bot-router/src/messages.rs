//! Every text a Discord user (or an agent) reads from the bot, in English and French.
//!
//! Short, friendly, and always saying what happens next: users of support bots hate silence and
//! guessing whether a person is on the other side.

use flexcord_kb::Lang;
use flexcord_proto::v1::{CaseKind, CaseStatus, Severity};

/// Escapes Discord Markdown in user- or agent-provided text shown inside bot sentences.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '_' | '~' | '`' | '|' | '>' | '\\' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Cuts `s` to at most `max` characters, ending with "…" when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A single line: newlines and tabs become spaces, other control characters are dropped.
pub fn one_line(s: &str) -> String {
    let joined: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .collect();
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drops control characters other than newlines and tabs.
pub fn clean_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Label of the "Talk to an agent" button.
pub fn handoff_button(l: Lang) -> &'static str {
    match l {
        Lang::En => "Talk to an agent",
        Lang::Fr => "Parler à un conseiller",
    }
}

/// Label of the button that skips the CSAT comment.
pub fn skip_button(l: Lang) -> &'static str {
    match l {
        Lang::En => "Skip",
        Lang::Fr => "Passer",
    }
}

/// `/helpme` greeting in bot mode.
pub fn greeting(l: Lang, name: &str) -> String {
    let name = escape_markdown(name);
    match l {
        Lang::En => format!(
            "Hi {name}! 👋 I'm the support bot.\n\
             Ask me anything in your own words (a missing purchase, a login problem, a bug) and I'll \
             find the help articles that fit.\n\
             Rather talk to a person? Tap **Talk to an agent** at any time, or just say so."
        ),
        Lang::Fr => format!(
            "Bonjour {name} ! 👋 Je suis le bot d'assistance.\n\
             Posez-moi votre question avec vos mots (un achat disparu, un souci de connexion, un bug) \
             et je vous proposerai les articles d'aide qui correspondent.\n\
             Vous préférez parler à quelqu'un ? Touchez **Parler à un conseiller** à tout moment, ou \
             dites-le simplement."
        ),
    }
}

/// `/helpme` while waiting for an agent.
pub fn helpme_waiting(l: Lang, case: &str) -> String {
    match (l, case.is_empty()) {
        (Lang::En, true) => "You're in line for an agent. They'll reply right here, and anything you \
                             write now is passed on to them."
            .to_owned(),
        (Lang::En, false) => format!(
            "You're in line for an agent (case **{case}**). They'll reply right here, and anything \
             you write now is passed on to them."
        ),
        (Lang::Fr, true) => "Vous êtes en attente d'un conseiller. Il vous répondra ici, et tout ce que \
                             vous écrivez maintenant lui est transmis."
            .to_owned(),
        (Lang::Fr, false) => format!(
            "Vous êtes en attente d'un conseiller (dossier **{case}**). Il vous répondra ici, et tout \
             ce que vous écrivez maintenant lui est transmis."
        ),
    }
}

/// `/helpme` or the hand-off button while an agent is connected.
pub fn helpme_connected(l: Lang, agent: &str, case: &str) -> String {
    let agent = escape_markdown(agent);
    match l {
        Lang::En => {
            format!("You're chatting with {agent} from support (case **{case}**). Just write here.")
        }
        Lang::Fr => format!(
            "Vous êtes en conversation avec {agent} du support (dossier **{case}**). Écrivez \
             simplement ici."
        ),
    }
}

/// First line of a knowledge-base answer.
pub fn kb_intro(l: Lang) -> &'static str {
    match l {
        Lang::En => "Here's what I found. Not what you need? Tap **Talk to an agent**.",
        Lang::Fr => {
            "Voici ce que j'ai trouvé. Ce n'est pas ça ? Touchez **Parler à un conseiller**."
        }
    }
}

/// Intro of a knowledge-base answer given for a Studio flow (no hand-off button: the flow decides).
pub fn kb_intro_plain(l: Lang) -> &'static str {
    match l {
        Lang::En => "Here's what I found:",
        Lang::Fr => "Voici ce que j'ai trouvé :",
    }
}

/// "Nothing matched" for a Studio flow's question.
pub fn no_match_plain(l: Lang) -> &'static str {
    match l {
        Lang::En => "Sorry, I couldn't find an article about that. Could you rephrase your question?",
        Lang::Fr => "Désolé, je n'ai pas trouvé d'article à ce sujet. Pouvez-vous reformuler votre question ?",
    }
}

/// Nothing in the knowledge base matched.
pub fn no_match(l: Lang) -> &'static str {
    match l {
        Lang::En => {
            "Sorry, I couldn't find an article about that. You can rephrase your question, \
                     or talk to a person: I'll open a case for you."
        }
        Lang::Fr => {
            "Désolé, je n'ai pas trouvé d'article à ce sujet. Vous pouvez reformuler votre \
                     question, ou parler à un conseiller : j'ouvrirai un dossier pour vous."
        }
    }
}

/// A bot-mode message without text (only a file or a sticker).
pub fn text_only(l: Lang) -> &'static str {
    match l {
        Lang::En => {
            "I can only read text for now. Tell me in a few words what's going on, or talk \
                     to an agent."
        }
        Lang::Fr => {
            "Je ne sais lire que du texte pour l'instant. Expliquez-moi en quelques mots ce \
                     qui se passe, ou parlez à un conseiller."
        }
    }
}

/// Prefix of an answer to a message found after a gateway gap.
pub fn late_reply(l: Lang) -> &'static str {
    match l {
        Lang::En => "Sorry for the slow reply, I was briefly offline.",
        Lang::Fr => "Désolé pour ce délai, j'étais brièvement hors ligne.",
    }
}

/// The hand-off's case is open.
pub fn case_created(l: Lang, case: &str) -> String {
    match l {
        Lang::En => format!(
            "Case **{case}** created. I'm connecting you to an agent: stay here, they'll reply in \
             this chat. Anything you write now is passed on to them."
        ),
        Lang::Fr => format!(
            "Dossier **{case}** créé. Je vous mets en relation avec un conseiller : restez ici, il \
             vous répondra dans cette conversation. Tout ce que vous écrivez maintenant lui est \
             transmis."
        ),
    }
}

/// case-service refused to open the hand-off's case.
pub fn case_open_failed(l: Lang) -> &'static str {
    match l {
        Lang::En => "Sorry, I couldn't open a case right now. Please try again in a few minutes.",
        Lang::Fr => {
            "Désolé, je n'ai pas pu ouvrir de dossier pour le moment. Réessayez dans \
                     quelques minutes."
        }
    }
}

/// The Flex side could not be started (twilio-egress gave up).
pub fn handoff_failed(l: Lang, case: &str) -> String {
    match l {
        Lang::En => format!(
            "Sorry, I couldn't reach our agents right now. Your case **{case}** stays open and the \
             team will follow up. You can also tap **Talk to an agent** to try again."
        ),
        Lang::Fr => format!(
            "Désolé, je n'arrive pas à joindre nos conseillers pour le moment. Votre dossier \
             **{case}** reste ouvert et l'équipe reviendra vers vous. Vous pouvez aussi toucher \
             **Parler à un conseiller** pour réessayer."
        ),
    }
}

/// An agent joined.
pub fn agent_joined(l: Lang, agent: &str) -> String {
    let agent = escape_markdown(agent);
    match l {
        Lang::En => format!("**{agent}** from support joined the conversation."),
        Lang::Fr => format!("**{agent}** du support a rejoint la conversation."),
    }
}

/// An agent's message as shown in the DM.
pub fn agent_says(l: Lang, agent: &str, body: &str) -> String {
    let agent = escape_markdown(agent);
    match l {
        Lang::En => format!("**{agent}:** {body}"),
        Lang::Fr => format!("**{agent}** : {body}"),
    }
}

/// A file the agent sent that could not be fetched.
pub fn agent_file_missing(l: Lang, filename: &str) -> String {
    let f = escape_markdown(filename);
    match l {
        Lang::En => format!("(a file, {f}, could not be shown here)"),
        Lang::Fr => format!("(un fichier, {f}, n'a pas pu être affiché ici)"),
    }
}

/// The agent as the subject of a sentence: the name (Markdown-escaped, bold if asked), or "The agent".
fn agent_subject(l: Lang, agent: &str, bold: bool) -> String {
    match (agent.is_empty(), l) {
        (true, Lang::En) => "The agent".to_owned(),
        (true, Lang::Fr) => "Le conseiller".to_owned(),
        (false, _) if bold => format!("**{}**", escape_markdown(agent)),
        (false, _) => escape_markdown(agent),
    }
}

/// The agent left without closing (a transfer): the case stays open and the next agent joins here.
pub fn agent_left(l: Lang, agent: &str, case: &str) -> String {
    let who = agent_subject(l, agent, true);
    match l {
        Lang::En => format!(
            "{who} left the conversation. Your case **{case}** stays open: another agent will \
             continue with you here."
        ),
        Lang::Fr => format!(
            "{who} a quitté la conversation. Votre dossier **{case}** reste ouvert : un autre \
             conseiller va poursuivre avec vous ici."
        ),
    }
}

/// The agent closed the conversation.
pub fn agent_closed(l: Lang, agent: &str, case: &str) -> String {
    let who = agent_subject(l, agent, false);
    match l {
        Lang::En => format!(
            "{who} closed the conversation. Your case **{case}** is marked as resolved. I'm back \
             if you need anything else."
        ),
        Lang::Fr => format!(
            "{who} a clôturé la conversation. Votre dossier **{case}** est marqué comme résolu. Je \
             suis là si vous avez besoin d'autre chose."
        ),
    }
}

/// The conversation was closed automatically after a silence.
pub fn idle_closed(l: Lang, minutes: u64, case: &str) -> String {
    match l {
        Lang::En => format!(
            "This conversation was closed after {minutes} minutes without messages. Your case \
             **{case}** is marked as resolved. Need more help? Just write here."
        ),
        Lang::Fr => format!(
            "Cette conversation a été clôturée après {minutes} minutes sans message. Votre dossier \
             **{case}** est marqué comme résolu. Besoin d'aide ? Écrivez simplement ici."
        ),
    }
}

/// The CSAT question (sent with the 1–5 buttons).
pub fn csat_prompt(l: Lang) -> &'static str {
    match l {
        Lang::En => "How did we do? Rate your conversation from 1 (poor) to 5 (excellent).",
        Lang::Fr => "Comment s'est passé cet échange ? Notez-le de 1 (mauvais) à 5 (excellent).",
    }
}

/// Thanks for a rating, and the invitation to comment.
pub fn csat_thanks(l: Lang, rating: u32) -> String {
    match l {
        Lang::En => format!(
            "Thanks for the {rating}/5! Anything you'd like to add? Write a comment here, or tap \
             **Skip**."
        ),
        Lang::Fr => format!(
            "Merci pour le {rating}/5 ! Vous voulez ajouter quelque chose ? Écrivez un commentaire \
             ici, ou touchez **Passer**."
        ),
    }
}

/// Thanks for a rating when no comment is invited (an agent conversation is going on).
pub fn csat_thanks_short(l: Lang, rating: u32) -> String {
    match l {
        Lang::En => format!("Thanks for the {rating}/5!"),
        Lang::Fr => format!("Merci pour le {rating}/5 !"),
    }
}

/// Thanks for the CSAT comment.
pub fn csat_comment_thanks(l: Lang) -> &'static str {
    match l {
        Lang::En => "Thanks, your comment has been passed on to the team. Anything else? Just ask.",
        Lang::Fr => {
            "Merci, votre commentaire a été transmis à l'équipe. Autre chose ? Demandez \
                     simplement."
        }
    }
}

/// The user skipped the CSAT comment.
pub fn csat_skipped(l: Lang) -> &'static str {
    match l {
        Lang::En => "No problem. I'm here if you need anything else.",
        Lang::Fr => "Pas de souci. Je suis là si vous avez besoin d'autre chose.",
    }
}

/// Waiting too long for an agent (default text; `{case}` is replaced in configured texts too).
pub fn wait_apology(l: Lang, configured: Option<&str>, case: &str) -> String {
    if let Some(text) = configured {
        return text.replace("{case}", case);
    }
    match l {
        Lang::En => format!(
            "Sorry for the wait, all our agents are busy right now. Your case **{case}** stays open \
             and you're still in line: an agent will reply here as soon as possible."
        ),
        Lang::Fr => format!(
            "Désolé pour l'attente, tous nos conseillers sont occupés. Votre dossier **{case}** reste \
             ouvert et vous êtes toujours en file : un conseiller vous répondra ici dès que possible."
        ),
    }
}

/// A message could not be delivered to the agent.
pub fn not_delivered(l: Lang) -> &'static str {
    match l {
        Lang::En => {
            "Sorry, your last message couldn't be delivered to the agent. Please send it \
                     again in a moment."
        }
        Lang::Fr => {
            "Désolé, votre dernier message n'a pas pu être transmis au conseiller. \
                     Renvoyez-le dans un instant."
        }
    }
}

/// A message could not be delivered because the agent side is closed; the bot is back.
pub fn agent_side_closed(l: Lang) -> &'static str {
    match l {
        Lang::En => {
            "The conversation with the agent has ended, so your message couldn't be passed \
                     on. I'm back: ask me anything, or tap **Talk to an agent** to reach a person \
                     again."
        }
        Lang::Fr => {
            "La conversation avec le conseiller est terminée, votre message n'a donc pas pu \
                     être transmis. Je suis de retour : posez-moi votre question, ou touchez \
                     **Parler à un conseiller** pour joindre à nouveau quelqu'un."
        }
    }
}

/// Agent-side notice (Flex): the user's DMs are closed.
pub const UNREACHABLE_NOTICE: &str =
    "The user cannot be reached on Discord: their DMs are closed, so they will not see your \
     messages.";

/// Case note: the user's DMs are closed.
pub fn unreachable_note(code: i32, reason: &str) -> String {
    let reason = one_line(reason);
    if reason.is_empty() {
        format!(
            "The user cannot be reached on Discord: their DMs are closed (Discord error {code})."
        )
    } else {
        format!(
            "The user cannot be reached on Discord: their DMs are closed (Discord error {code}: {})",
            truncate(&reason, 300)
        )
    }
}

/// Case note: the user waited too long.
pub fn wait_note(minutes: u64) -> String {
    format!("The user waited {minutes} minutes without an agent; the bot apologised. The case stays open.")
}

/// Agent-side summary when the user wrote nothing before asking for a person.
pub const EMPTY_SUMMARY: &str = "The user asked to talk to an agent.";

fn kind_label(l: Lang, kind: CaseKind) -> &'static str {
    match (l, kind) {
        (Lang::En, CaseKind::Bug) => "bug report",
        (Lang::En, CaseKind::Feature) => "feature request",
        (Lang::En, _) => "support case",
        (Lang::Fr, CaseKind::Bug) => "signalement de bug",
        (Lang::Fr, CaseKind::Feature) => "demande de fonctionnalité",
        (Lang::Fr, _) => "demande d'assistance",
    }
}

/// A case status as users read it.
pub fn status_label(l: Lang, status: CaseStatus) -> &'static str {
    match (l, status) {
        (Lang::En, CaseStatus::InProgress) => "being worked on",
        (Lang::En, CaseStatus::WaitingOnCustomer) => "waiting for your reply",
        (Lang::En, CaseStatus::Resolved) => "resolved",
        (Lang::En, CaseStatus::Closed) => "closed",
        (Lang::En, _) => "open",
        (Lang::Fr, CaseStatus::InProgress) => "en cours de traitement",
        (Lang::Fr, CaseStatus::WaitingOnCustomer) => "en attente de votre réponse",
        (Lang::Fr, CaseStatus::Resolved) => "résolu",
        (Lang::Fr, CaseStatus::Closed) => "fermé",
        (Lang::Fr, _) => "ouvert",
    }
}

/// A severity as users read it.
pub fn severity_label(l: Lang, severity: Severity) -> &'static str {
    match (l, severity) {
        (Lang::En, Severity::Low) => "Low",
        (Lang::En, Severity::High) => "High",
        (Lang::En, Severity::Critical) => "Critical",
        (Lang::En, _) => "Medium",
        (Lang::Fr, Severity::Low) => "Faible",
        (Lang::Fr, Severity::High) => "Élevée",
        (Lang::Fr, Severity::Critical) => "Critique",
        (Lang::Fr, _) => "Moyenne",
    }
}

/// A case's status changed (told to the reporter in their DM).
pub fn status_changed(
    l: Lang,
    kind: CaseKind,
    case: &str,
    subject: &str,
    status: CaseStatus,
    comment: &str,
) -> String {
    let subject = escape_markdown(&truncate(&one_line(subject), 120));
    let kind = kind_label(l, kind);
    let status = status_label(l, status);
    let mut text = match l {
        Lang::En => format!("Update on your {kind} **{case}** (“{subject}”): it is now **{status}**."),
        Lang::Fr => format!(
            "Du nouveau sur votre {kind} **{case}** (« {subject} ») : il est maintenant **{status}**."
        ),
    };
    let comment = clean_text(comment);
    if !comment.is_empty() {
        let comment = truncate(&comment, 1200).replace('\n', "\n> ");
        match l {
            Lang::En => text.push_str(&format!("\nNote from the team:\n> {comment}")),
            Lang::Fr => text.push_str(&format!("\nMot de l'équipe :\n> {comment}")),
        }
    }
    text
}

/// The ephemeral receipt of `/bug` and `/feature-request`.
pub fn report_receipt(l: Lang, kind: CaseKind, case: &str) -> String {
    match (l, kind) {
        (Lang::En, CaseKind::Feature) => format!(
            "Thanks! Your feature request was filed as case **{case}**. I'll send you a DM when its \
             status changes."
        ),
        (Lang::En, _) => format!(
            "Thanks! Your bug report was filed as case **{case}**. I'll send you a DM when its status \
             changes."
        ),
        (Lang::Fr, CaseKind::Feature) => format!(
            "Merci ! Votre demande de fonctionnalité est enregistrée sous le dossier **{case}**. Je \
             vous préviendrai en message privé quand son statut changera."
        ),
        (Lang::Fr, _) => format!(
            "Merci ! Votre signalement de bug est enregistré sous le dossier **{case}**. Je vous \
             préviendrai en message privé quand son statut changera."
        ),
    }
}

/// Labels of the case embed posted to the channel.
pub struct EmbedLabels {
    /// "Status".
    pub status: &'static str,
    /// "Severity".
    pub severity: &'static str,
    /// "Reported by".
    pub reporter: &'static str,
    /// Footer: "Bug report" / "Feature request".
    pub footer: &'static str,
}

/// Labels of the case embed in language `l` for a case of `kind`.
pub fn embed_labels(l: Lang, kind: CaseKind) -> EmbedLabels {
    match l {
        Lang::En => EmbedLabels {
            status: "Status",
            severity: "Severity",
            reporter: "Reported by",
            footer: if kind == CaseKind::Feature {
                "Feature request"
            } else {
                "Bug report"
            },
        },
        Lang::Fr => EmbedLabels {
            status: "Statut",
            severity: "Gravité",
            reporter: "Signalé par",
            footer: if kind == CaseKind::Feature {
                "Demande de fonctionnalité"
            } else {
                "Signalement de bug"
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_escape_cut_and_flatten() {
        assert_eq!(escape_markdown("a*b_c"), "a\\*b\\_c");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(one_line(" a\n b\tc\u{7} "), "a b c");
        assert_eq!(clean_text(" a\u{0}b\nc "), "ab\nc");
    }

    #[test]
    fn every_text_exists_in_both_languages_and_differs() {
        for (en, fr) in [
            (greeting(Lang::En, "Ana"), greeting(Lang::Fr, "Ana")),
            (
                case_created(Lang::En, "CASE-000001"),
                case_created(Lang::Fr, "CASE-000001"),
            ),
            (agent_joined(Lang::En, "Ana"), agent_joined(Lang::Fr, "Ana")),
            (no_match(Lang::En).to_owned(), no_match(Lang::Fr).to_owned()),
            (csat_thanks(Lang::En, 4), csat_thanks(Lang::Fr, 4)),
            (
                wait_apology(Lang::En, None, "C"),
                wait_apology(Lang::Fr, None, "C"),
            ),
        ] {
            assert!(!en.is_empty() && !fr.is_empty());
            assert_ne!(en, fr);
        }
        assert_eq!(
            agent_joined(Lang::En, "Ana"),
            "**Ana** from support joined the conversation."
        );
        assert!(case_created(Lang::En, "CASE-000123").contains("CASE-000123"));
    }

    #[test]
    fn configured_apology_replaces_the_case_placeholder() {
        assert_eq!(
            wait_apology(
                Lang::Fr,
                Some("Patience, {case} est ouvert."),
                "CASE-000009"
            ),
            "Patience, CASE-000009 est ouvert."
        );
    }

    #[test]
    fn status_change_quotes_the_comment() {
        let t = status_changed(
            Lang::En,
            CaseKind::Bug,
            "CASE-000123",
            "Crash\non start",
            CaseStatus::Resolved,
            "Fixed in 1.2\nThanks",
        );
        assert!(t.contains("bug report **CASE-000123** (“Crash on start”)"));
        assert!(t.contains("**resolved**"));
        assert!(t.contains("> Fixed in 1.2\n> Thanks"));
    }
}
