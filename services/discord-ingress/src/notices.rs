//! What ingress itself says to users (in English or French): interaction receipts and notices about
//! throttling and files over the size cap. Everything else users read comes from bot-router.

use crate::commands::is_french;

/// The ephemeral receipt of `/helpme` in a guild channel.
pub fn helpme_receipt(locale: &str) -> &'static str {
    if is_french(locale) {
        "Je vous ai écrit en message privé : on continue là-bas."
    } else {
        "I've sent you a direct message: let's continue there."
    }
}

/// The ephemeral receipt of `/helpme` inside the DM itself.
pub fn helpme_receipt_in_dm(locale: &str) -> &'static str {
    if is_french(locale) {
        "C'est noté, je suis là."
    } else {
        "Got it, I'm here."
    }
}

/// Sent once when a user is throttled.
pub fn throttled(locale: &str) -> &'static str {
    if is_french(locale) {
        "Vous envoyez des messages trop vite : certains ne sont pas transmis. Merci d'attendre une minute avant d'écrire à nouveau."
    } else {
        "You're sending messages too quickly, so some of them were not passed on. Please wait a minute before writing again."
    }
}

/// Ephemeral answer to a command from a blocked user (or from a guild that is not the product's).
pub fn not_available(locale: &str) -> &'static str {
    if is_french(locale) {
        "Cette commande n'est pas disponible."
    } else {
        "This command is not available."
    }
}

/// Human size, e.g. `8 MB`.
fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const KIB: u64 = 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB {
        format!("{} KB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Sent when files of a message exceed the size cap.
pub fn files_too_large(locale: &str, names: &[String], limit: u64) -> String {
    let list = names
        .iter()
        .map(|n| format!("`{}`", n.replace('`', "'")))
        .collect::<Vec<_>>()
        .join(", ");
    let limit = human_size(limit);
    if is_french(locale) {
        format!("Fichier trop volumineux ({list}) : la limite est de {limit}, il n'a pas été transmis. Merci d'envoyer un fichier plus petit.")
    } else {
        format!("File too large ({list}): the limit is {limit}, so it was not passed on. Please send a smaller file.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_follow_the_locale() {
        assert!(helpme_receipt("fr").contains("message privé"));
        assert!(helpme_receipt("en-US").contains("direct message"));
        let t = files_too_large("en-GB", &["a.png".into()], 8 * 1024 * 1024);
        assert!(t.contains("`a.png`") && t.contains("8 MB"), "{t}");
        assert!(files_too_large("fr", &["b".into()], 1536).contains("1 KB"));
        assert_eq!(human_size(1536 * 1024), "1.5 MB");
    }
}
