//! Route classification: (method, path) to a route and its template (used for counters and faults).

use http::Method;

/// Every endpoint the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Route {
    ConversationCreate,
    ConversationList,
    ConversationFetch,
    ConversationUpdate,
    ConversationDelete,
    ParticipantCreate,
    ParticipantList,
    ParticipantFetch,
    ParticipantDelete,
    MessageCreate,
    MessageList,
    MessageFetch,
    MessageUpdate,
    MessageDelete,
    WebhookCreate,
    WebhookList,
    WebhookFetch,
    WebhookDelete,
    ParticipantConversationList,
    InteractionCreate,
    InteractionFetch,
    InteractionChannelList,
    InteractionChannelFetch,
    InteractionChannelUpdate,
    MediaCreate,
    MediaFetch,
    MediaContent,
    MediaDirect,
}

impl Route {
    /// All routes, in counter order.
    pub const ALL: [Route; 28] = [
        Route::ConversationCreate,
        Route::ConversationList,
        Route::ConversationFetch,
        Route::ConversationUpdate,
        Route::ConversationDelete,
        Route::ParticipantCreate,
        Route::ParticipantList,
        Route::ParticipantFetch,
        Route::ParticipantDelete,
        Route::MessageCreate,
        Route::MessageList,
        Route::MessageFetch,
        Route::MessageUpdate,
        Route::MessageDelete,
        Route::WebhookCreate,
        Route::WebhookList,
        Route::WebhookFetch,
        Route::WebhookDelete,
        Route::ParticipantConversationList,
        Route::InteractionCreate,
        Route::InteractionFetch,
        Route::InteractionChannelList,
        Route::InteractionChannelFetch,
        Route::InteractionChannelUpdate,
        Route::MediaCreate,
        Route::MediaFetch,
        Route::MediaContent,
        Route::MediaDirect,
    ];

    /// Position in [`Route::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// `METHOD /path/{template}`, e.g. `POST /v1/Conversations/{sid}/Messages`.
    pub fn template(self) -> &'static str {
        match self {
            Route::ConversationCreate => "POST /v1/Conversations",
            Route::ConversationList => "GET /v1/Conversations",
            Route::ConversationFetch => "GET /v1/Conversations/{sid}",
            Route::ConversationUpdate => "POST /v1/Conversations/{sid}",
            Route::ConversationDelete => "DELETE /v1/Conversations/{sid}",
            Route::ParticipantCreate => "POST /v1/Conversations/{sid}/Participants",
            Route::ParticipantList => "GET /v1/Conversations/{sid}/Participants",
            Route::ParticipantFetch => "GET /v1/Conversations/{sid}/Participants/{sid}",
            Route::ParticipantDelete => "DELETE /v1/Conversations/{sid}/Participants/{sid}",
            Route::MessageCreate => "POST /v1/Conversations/{sid}/Messages",
            Route::MessageList => "GET /v1/Conversations/{sid}/Messages",
            Route::MessageFetch => "GET /v1/Conversations/{sid}/Messages/{sid}",
            Route::MessageUpdate => "POST /v1/Conversations/{sid}/Messages/{sid}",
            Route::MessageDelete => "DELETE /v1/Conversations/{sid}/Messages/{sid}",
            Route::WebhookCreate => "POST /v1/Conversations/{sid}/Webhooks",
            Route::WebhookList => "GET /v1/Conversations/{sid}/Webhooks",
            Route::WebhookFetch => "GET /v1/Conversations/{sid}/Webhooks/{sid}",
            Route::WebhookDelete => "DELETE /v1/Conversations/{sid}/Webhooks/{sid}",
            Route::ParticipantConversationList => "GET /v1/ParticipantConversations",
            Route::InteractionCreate => "POST /v1/Interactions",
            Route::InteractionFetch => "GET /v1/Interactions/{sid}",
            Route::InteractionChannelList => "GET /v1/Interactions/{sid}/Channels",
            Route::InteractionChannelFetch => "GET /v1/Interactions/{sid}/Channels/{sid}",
            Route::InteractionChannelUpdate => "POST /v1/Interactions/{sid}/Channels/{sid}",
            Route::MediaCreate => "POST /v1/Services/{sid}/Media",
            Route::MediaFetch => "GET /v1/Services/{sid}/Media/{sid}",
            Route::MediaContent => "GET /v1/Services/{sid}/Media/{sid}/Content",
            Route::MediaDirect => "GET /__media/{sid}/{token}",
        }
    }
}

/// Splits a path into percent-decoded segments.
pub fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// Classifies a request; returns the route and its path parameters in order.
pub fn classify(method: &Method, segs: &[String]) -> Option<(Route, Vec<String>)> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.as_str();
    let p = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let route = match (m, s.as_slice()) {
        ("POST", ["v1", "Conversations"]) => (Route::ConversationCreate, vec![]),
        ("GET", ["v1", "Conversations"]) => (Route::ConversationList, vec![]),
        ("GET", ["v1", "Conversations", c]) => (Route::ConversationFetch, p(&[c])),
        ("POST", ["v1", "Conversations", c]) => (Route::ConversationUpdate, p(&[c])),
        ("DELETE", ["v1", "Conversations", c]) => (Route::ConversationDelete, p(&[c])),
        ("POST", ["v1", "Conversations", c, "Participants"]) => (Route::ParticipantCreate, p(&[c])),
        ("GET", ["v1", "Conversations", c, "Participants"]) => (Route::ParticipantList, p(&[c])),
        ("GET", ["v1", "Conversations", c, "Participants", x]) => {
            (Route::ParticipantFetch, p(&[c, x]))
        }
        ("DELETE", ["v1", "Conversations", c, "Participants", x]) => {
            (Route::ParticipantDelete, p(&[c, x]))
        }
        ("POST", ["v1", "Conversations", c, "Messages"]) => (Route::MessageCreate, p(&[c])),
        ("GET", ["v1", "Conversations", c, "Messages"]) => (Route::MessageList, p(&[c])),
        ("GET", ["v1", "Conversations", c, "Messages", x]) => (Route::MessageFetch, p(&[c, x])),
        ("POST", ["v1", "Conversations", c, "Messages", x]) => (Route::MessageUpdate, p(&[c, x])),
        ("DELETE", ["v1", "Conversations", c, "Messages", x]) => (Route::MessageDelete, p(&[c, x])),
        ("POST", ["v1", "Conversations", c, "Webhooks"]) => (Route::WebhookCreate, p(&[c])),
        ("GET", ["v1", "Conversations", c, "Webhooks"]) => (Route::WebhookList, p(&[c])),
        ("GET", ["v1", "Conversations", c, "Webhooks", x]) => (Route::WebhookFetch, p(&[c, x])),
        ("DELETE", ["v1", "Conversations", c, "Webhooks", x]) => (Route::WebhookDelete, p(&[c, x])),
        ("GET", ["v1", "ParticipantConversations"]) => (Route::ParticipantConversationList, vec![]),
        ("POST", ["v1", "Interactions"]) => (Route::InteractionCreate, vec![]),
        ("GET", ["v1", "Interactions", k]) => (Route::InteractionFetch, p(&[k])),
        ("GET", ["v1", "Interactions", k, "Channels"]) => (Route::InteractionChannelList, p(&[k])),
        ("GET", ["v1", "Interactions", k, "Channels", u]) => {
            (Route::InteractionChannelFetch, p(&[k, u]))
        }
        ("POST", ["v1", "Interactions", k, "Channels", u]) => {
            (Route::InteractionChannelUpdate, p(&[k, u]))
        }
        ("POST", ["v1", "Services", i, "Media"]) => (Route::MediaCreate, p(&[i])),
        ("GET", ["v1", "Services", i, "Media", me]) => (Route::MediaFetch, p(&[i, me])),
        ("GET", ["v1", "Services", i, "Media", me, "Content"]) => {
            (Route::MediaContent, p(&[i, me]))
        }
        ("GET", ["__media", me, t]) => (Route::MediaDirect, p(&[me, t])),
        _ => return None,
    };
    Some(route)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn classifies_and_decodes() {
        let segs = segments("/v1/Conversations/discord%2042/Messages/");
        assert_eq!(segs[2], "discord 42");
        let (r, p) = classify(&Method::POST, &segs).unwrap();
        assert_eq!(r, Route::MessageCreate);
        assert_eq!(p, vec!["discord 42".to_string()]);
        assert_eq!(r.template(), "POST /v1/Conversations/{sid}/Messages");
        assert!(classify(&Method::PUT, &segs).is_none());
        assert_eq!(segments("/a/b+c")[1], "b+c");
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
