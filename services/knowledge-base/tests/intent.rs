//! Table-driven test of `intent::wants_human` in English and French.

use flexcord_kb::intent::wants_human;

const CASES: &[(&str, bool)] = &[
    // English: asking for a person
    ("agent", true),
    ("Agent please", true),
    ("human", true),
    ("HUMAN!!!", true),
    ("I want to talk to a human", true),
    ("can i speak to a real person?", true),
    ("talk to a person", true),
    ("real person please", true),
    ("I need a human", true),
    ("get me a live agent", true),
    ("connect me with support staff", true),
    ("is there anyone there?", true),
    ("someone?", true),
    ("customer service", true),
    ("representative", true),
    (
        "my game crashes every time and nothing works, can I talk to someone from your team",
        true,
    ),
    ("let me talk to an agnet", true),
    ("speak to humna", true),
    ("transfer me to an operator", true),
    ("i need an agent for my refund problem", true),
    ("I want an agent skin", false),
    // French: asking for a person
    ("je veux parler à un conseiller", true),
    ("parler a un agent", true),
    ("je veux parler à une personne", true),
    ("un humain svp", true),
    ("quelqu'un ?", true),
    ("Quelqu'un peut m'aider ?", true),
    ("je voudrais parler a un vrai humain", true),
    ("est-ce que je peux parler à quelqu'un", true),
    ("CONSEILLER", true),
    ("un humian stp", true),
    ("je veux un conseiller", true),
    ("contacter le service client", true),
    ("j'ai besoin d'un agent", true),
    ("passez moi un conseiller svp", true),
    ("une vraie personne svp", true),
    // English: not asking for a person
    ("my agent skin disappeared", false),
    ("I want the agent skin from the event", false),
    ("someone stole my account", false),
    ("someone keeps insulting me in chat", false),
    ("how do i report a person who is cheating", false),
    ("I forgot my password", false),
    ("the game crashes on launch", false),
    ("human league event rewards?", false),
    (
        "I don't need a human, just tell me how to reset my password",
        false,
    ),
    ("thanks", false),
    ("ok", false),
    ("", false),
    ("👍", false),
    ("where is my stuff", false),
    // French: not asking for a person
    ("personne ne répond dans le jeu", false),
    ("quelqu'un a piraté mon compte", false),
    ("je veux mon argent", false),
    ("argent", false),
    ("mon skin agent secret a disparu", false),
    ("comment signaler une personne qui triche", false),
    (
        "je ne veux pas parler à un humain, juste réinitialiser mon mot de passe",
        false,
    ),
    ("merci beaucoup", false),
    ("le jeu plante au lancement", false),
    ("comment changer de pseudo", false),
];

#[test]
fn wants_human_table() {
    let failures: Vec<String> = CASES
        .iter()
        .filter(|(text, expected)| wants_human(text) != *expected)
        .map(|(text, expected)| format!("{text:?}: expected {expected}"))
        .collect();
    assert!(CASES.len() >= 30);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wants_human_survives_hostile_input() {
    let long = "agent ".repeat(100_000);
    let noise = "\u{0}\u{202e}\"*:(-)".repeat(1000);
    for input in [long.as_str(), noise.as_str(), "é".repeat(50_000).as_str()] {
        let _ = wants_human(input);
    }
}
