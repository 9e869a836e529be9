//! Opening (or reusing) a user's DM channel.

use flexcord_proto::v1::DiscordUser;
use serde_json::json;
use tracing::warn;

use crate::mapping::RawChannel;
use crate::rest::{Body, DiscordRest, RestError, Route};
use crate::state::State;

/// The DM channel with `user_id`: from memory or KV when known, else opened with
/// `POST /users/@me/channels` (Discord returns the existing channel if there is one).
///
/// `track` records the channel as a DM channel with a catch-up cursor at `initial_cursor` (the process
/// that runs the gateway); otherwise only the user -> channel index is written.
pub async fn open_dm(
    rest: &DiscordRest,
    state: &State,
    user: &DiscordUser,
    track: bool,
    initial_cursor: u64,
) -> Result<u64, RestError> {
    let known = match state.user_dm_lookup(user.id).await {
        Ok(c) => c,
        Err(e) => {
            warn!(user_id = user.id, error = %e, "Cannot read the DM index; opening the DM channel again.");
            None
        }
    };
    let channel_id = match known {
        Some(c) => c,
        None => {
            let ch: RawChannel = rest
                .send_json(
                    &Route::create_dm(),
                    Body::json(&json!({"recipient_id": user.id.to_string()})),
                )
                .await?;
            ch.id
        }
    };
    if track {
        state.observe_dm(channel_id, user, initial_cursor);
    } else if known.is_none() {
        if let Err(e) = state.remember_user_dm(user.id, channel_id).await {
            warn!(user_id = user.id, error = %e, "Cannot record a user's DM channel.");
        }
    }
    Ok(channel_id)
}
