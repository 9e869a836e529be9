//! The Discord routes the product calls, each with its rate-limit identity: the route template (with
//! the method) and the major parameter, the way Discord keys its per-route buckets.

use reqwest::Method;

/// One REST route instance.
#[derive(Clone, PartialEq, Eq)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// `"METHOD /template"`, e.g. `"POST /channels/{channel_id}/messages"`. Safe to log.
    pub key: &'static str,
    /// Major parameter (`c:<channel>`, `g:<guild>`, `w:<webhook>:<token>`, `i:<id>:<token>`, or empty).
    /// May contain an interaction token: never log it.
    pub major: String,
    /// Path under `/api/v10`, with the query. May contain an interaction token: never log it.
    pub path: String,
    /// Exempt from the global limit (interaction callbacks and webhooks).
    pub global_exempt: bool,
    /// Send the bot's `Authorization` header.
    pub auth: bool,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key)
    }
}

fn route(method: Method, key: &'static str, major: String, path: String) -> Route {
    Route {
        method,
        key,
        major,
        path,
        global_exempt: false,
        auth: true,
    }
}

/// Reference to a message sent through an interaction webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookMessage {
    /// The interaction's original response.
    Original,
    /// A follow-up (or the original, by id).
    Id(u64),
}

impl WebhookMessage {
    fn segment(&self) -> String {
        match self {
            WebhookMessage::Original => "@original".to_owned(),
            WebhookMessage::Id(id) => id.to_string(),
        }
    }
}

/// Percent-encodes an interaction token for a path segment (tokens are URL-safe in practice).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Route {
    /// `GET /gateway`.
    pub fn get_gateway() -> Route {
        route(
            Method::GET,
            "GET /gateway",
            String::new(),
            "/gateway".to_owned(),
        )
    }

    /// `GET /users/@me`.
    pub fn current_user() -> Route {
        route(
            Method::GET,
            "GET /users/@me",
            String::new(),
            "/users/@me".to_owned(),
        )
    }

    /// `POST /users/@me/channels` (open a DM).
    pub fn create_dm() -> Route {
        route(
            Method::POST,
            "POST /users/@me/channels",
            String::new(),
            "/users/@me/channels".to_owned(),
        )
    }

    /// `GET /channels/{channel_id}`.
    pub fn get_channel(channel_id: u64) -> Route {
        route(
            Method::GET,
            "GET /channels/{channel_id}",
            format!("c:{channel_id}"),
            format!("/channels/{channel_id}"),
        )
    }

    /// `POST /channels/{channel_id}/messages`.
    pub fn create_message(channel_id: u64) -> Route {
        route(
            Method::POST,
            "POST /channels/{channel_id}/messages",
            format!("c:{channel_id}"),
            format!("/channels/{channel_id}/messages"),
        )
    }

    /// `GET /channels/{channel_id}/messages?after=&limit=`.
    pub fn messages_after(channel_id: u64, after: u64, limit: u8) -> Route {
        route(
            Method::GET,
            "GET /channels/{channel_id}/messages",
            format!("c:{channel_id}"),
            format!(
                "/channels/{channel_id}/messages?after={after}&limit={}",
                limit.clamp(1, 100)
            ),
        )
    }

    /// `PATCH /channels/{channel_id}/messages/{message_id}`.
    pub fn edit_message(channel_id: u64, message_id: u64) -> Route {
        route(
            Method::PATCH,
            "PATCH /channels/{channel_id}/messages/{message_id}",
            format!("c:{channel_id}"),
            format!("/channels/{channel_id}/messages/{message_id}"),
        )
    }

    /// `DELETE /channels/{channel_id}/messages/{message_id}`.
    pub fn delete_message(channel_id: u64, message_id: u64) -> Route {
        route(
            Method::DELETE,
            "DELETE /channels/{channel_id}/messages/{message_id}",
            format!("c:{channel_id}"),
            format!("/channels/{channel_id}/messages/{message_id}"),
        )
    }

    /// `POST /interactions/{id}/{token}/callback` (exempt from the global limit).
    pub fn interaction_callback(interaction_id: u64, token: &str) -> Route {
        Route {
            method: Method::POST,
            key: "POST /interactions/{interaction_id}/{interaction_token}/callback",
            major: format!("i:{interaction_id}:{token}"),
            path: format!("/interactions/{interaction_id}/{}/callback", seg(token)),
            global_exempt: true,
            auth: true,
        }
    }

    /// `POST /webhooks/{application_id}/{token}` (interaction follow-up; exempt from the global limit).
    pub fn followup(application_id: u64, token: &str) -> Route {
        Route {
            method: Method::POST,
            key: "POST /webhooks/{webhook_id}/{webhook_token}",
            major: format!("w:{application_id}:{token}"),
            path: format!("/webhooks/{application_id}/{}", seg(token)),
            global_exempt: true,
            auth: true,
        }
    }

    /// `PATCH /webhooks/{application_id}/{token}/messages/{id|@original}`.
    pub fn edit_webhook_message(
        application_id: u64,
        token: &str,
        message: WebhookMessage,
    ) -> Route {
        Route {
            method: Method::PATCH,
            key: "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            major: format!("w:{application_id}:{token}"),
            path: format!(
                "/webhooks/{application_id}/{}/messages/{}",
                seg(token),
                message.segment()
            ),
            global_exempt: true,
            auth: true,
        }
    }

    /// `DELETE /webhooks/{application_id}/{token}/messages/{id|@original}`.
    pub fn delete_webhook_message(
        application_id: u64,
        token: &str,
        message: WebhookMessage,
    ) -> Route {
        Route {
            method: Method::DELETE,
            key: "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            major: format!("w:{application_id}:{token}"),
            path: format!(
                "/webhooks/{application_id}/{}/messages/{}",
                seg(token),
                message.segment()
            ),
            global_exempt: true,
            auth: true,
        }
    }

    /// `PUT /applications/{application_id}/commands` (bulk overwrite of global commands).
    pub fn put_global_commands(application_id: u64) -> Route {
        route(
            Method::PUT,
            "PUT /applications/{application_id}/commands",
            String::new(),
            format!("/applications/{application_id}/commands"),
        )
    }

    /// `PUT /applications/{application_id}/guilds/{guild_id}/commands`.
    pub fn put_guild_commands(application_id: u64, guild_id: u64) -> Route {
        route(
            Method::PUT,
            "PUT /applications/{application_id}/guilds/{guild_id}/commands",
            format!("g:{guild_id}"),
            format!("/applications/{application_id}/guilds/{guild_id}/commands"),
        )
    }

    /// `GET /guilds/{guild_id}/channels`.
    pub fn guild_channels(guild_id: u64) -> Route {
        route(
            Method::GET,
            "GET /guilds/{guild_id}/channels",
            format!("g:{guild_id}"),
            format!("/guilds/{guild_id}/channels"),
        )
    }

    /// `POST /guilds/{guild_id}/channels`.
    pub fn create_guild_channel(guild_id: u64) -> Route {
        route(
            Method::POST,
            "POST /guilds/{guild_id}/channels",
            format!("g:{guild_id}"),
            format!("/guilds/{guild_id}/channels"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_majors_and_paths() {
        let r = Route::create_message(42);
        assert_eq!(r.key, "POST /channels/{channel_id}/messages");
        assert_eq!(r.major, "c:42");
        assert_eq!(r.path, "/channels/42/messages");
        assert!(!r.global_exempt);
        let r = Route::interaction_callback(7, "tok/en");
        assert!(r.global_exempt);
        assert_eq!(r.path, "/interactions/7/tok%2Fen/callback");
        assert_eq!(format!("{r:?}"), r.key, "Debug never shows the token");
        let r = Route::edit_webhook_message(1, "t", WebhookMessage::Original);
        assert_eq!(r.path, "/webhooks/1/t/messages/@original");
        assert_eq!(
            Route::messages_after(5, 9, 200).path,
            "/channels/5/messages?after=9&limit=100"
        );
    }
}
