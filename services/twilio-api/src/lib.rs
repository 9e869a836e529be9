//! Twilio Conversations and Interactions REST client and webhook signature validation.
//!
//! * [`TwilioClient`] — typed async calls to Conversations v1, Flex Interactions v1 and the
//!   Media Content Service, with errors classified for retry decisions ([`TwilioError`]).
//! * [`signature`] — compute/validate `X-Twilio-Signature` exactly as Twilio does.
//! * [`webhook_event`] — typed Conversations post-event webhooks.
//! * [`form`] — form encoding that keeps repeated keys and dotted names.

pub mod client;
pub mod config;
pub mod conversations;
pub mod error;
pub mod form;
pub mod interactions;
pub mod media;
pub mod signature;
pub mod webhook_event;

pub use client::{Page, TwilioClient, WEBHOOK_ENABLED_HEADER};
pub use config::{ConfigError, Credentials, TwilioConfig};
pub use conversations::{
    parse_attributes, Conversation, ConversationState, ConversationWebhook, CreateConversation,
    CreateConversationWebhook, CreateMessage, CreateParticipant, ListMessages, Message,
    MessageMedia, Order, Participant, ParticipantConversation, UpdateConversation, UpdateMessage,
    WebhookConfiguration,
};
pub use error::{codes, TwilioError};
pub use interactions::{
    CreateInteraction, Interaction, InteractionChannel, InteractionChannelRef, InteractionRouting,
    RoutingProperties, UpdateInteractionChannel,
};
pub use media::{Media, MediaContent, MediaLinks};
pub use secrecy::{ExposeSecret, SecretString};
pub use webhook_event::{WebhookEvent, WebhookEventError};
