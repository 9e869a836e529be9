#!/usr/bin/env python3
"""Drive the twilio-emulator with the official, unmodified Twilio Python SDK.

Env: TWILIO_EMULATOR_URL, TWILIO_EMULATOR_ACCOUNT_SID, TWILIO_EMULATOR_AUTH_TOKEN.
Exits non-zero with a clear message on the first mismatch. The SDK's product domains
expose `base_url`; pointing it at the emulator is the only change (no patched code).
"""

import json
import os
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

STEP = "start"


def fail(msg):
    print(f"SDK CONFORMANCE FAILED at step {STEP!r}: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def step(name):
    global STEP
    STEP = name
    print(f"- {name}")


def expect_error(fn, status, code):
    try:
        fn()
    except TwilioRestException as e:
        check(e.status == status, f"expected HTTP {status}, got {e.status} ({e.msg})")
        check(e.code == code, f"expected Twilio code {code}, got {e.code} ({e.msg})")
        return e
    fail(f"expected TwilioRestException {status}/{code}, call succeeded")


def main():
    url = os.environ["TWILIO_EMULATOR_URL"]
    sid = os.environ["TWILIO_EMULATOR_ACCOUNT_SID"]
    token = os.environ["TWILIO_EMULATOR_AUTH_TOKEN"]

    client = Client(sid, token)
    client.conversations.base_url = url
    client.flex_api.base_url = url
    convs = client.conversations.v1

    step("create conversation")
    conv = convs.conversations.create(
        friendly_name="Discord: alice",
        unique_name="discord_42_sdk",
        attributes=json.dumps({"discordUserId": "42"}),
        timers_closed="P1D",
    )
    check(conv.sid.startswith("CH") and len(conv.sid) == 34, f"bad conversation sid {conv.sid}")
    check(conv.state == "active", f"state {conv.state}")
    check(json.loads(conv.attributes) == {"discordUserId": "42"}, f"attributes {conv.attributes!r}")
    check(conv.account_sid == sid, "account_sid mismatch")
    check(conv.chat_service_sid.startswith("IS"), f"chat_service_sid {conv.chat_service_sid}")
    check(conv.date_created is not None, "date_created not parsed as a datetime")

    step("fetch by unique name")
    again = convs.conversations("discord_42_sdk").fetch()
    check(again.sid == conv.sid, "fetch by unique name returned another conversation")

    step("duplicate unique name -> 50353")
    expect_error(lambda: convs.conversations.create(unique_name="discord_42_sdk"), 409, 50353)

    step("add participant")
    part = convs.conversations(conv.sid).participants.create(
        identity="discord_42", attributes=json.dumps({"name": "alice"})
    )
    check(part.sid.startswith("MB"), f"participant sid {part.sid}")
    check(part.identity == "discord_42", f"identity {part.identity}")
    check(part.conversation_sid == conv.sid, "participant conversation_sid")

    step("duplicate participant -> 50433")
    expect_error(lambda: convs.conversations(conv.sid).participants.create(identity="discord_42"), 409, 50433)

    step("scoped webhook with repeated filters")
    hook = convs.conversations(conv.sid).webhooks.create(
        target="webhook",
        configuration_url="http://127.0.0.1:9/hook",
        configuration_method="post",
        configuration_filters=["onMessageAdded", "onParticipantAdded"],
    )
    check(hook.sid.startswith("WH"), f"webhook sid {hook.sid}")
    check(
        hook.configuration.get("filters") == ["onMessageAdded", "onParticipantAdded"],
        f"filters {hook.configuration!r}",
    )

    step("post messages")
    first = convs.conversations(conv.sid).messages.create(
        author="discord_42", body="hello from the SDK", attributes=json.dumps({"discordMessageId": "1"})
    )
    check(first.sid.startswith("IM"), f"message sid {first.sid}")
    check(first.index == 0, f"index {first.index}")
    check(first.author == "discord_42", f"author {first.author}")
    check(first.participant_sid == part.sid, f"participant_sid {first.participant_sid}")
    check(json.loads(first.attributes)["discordMessageId"] == "1", "message attributes")
    for i in range(1, 5):
        convs.conversations(conv.sid).messages.create(author="discord_42", body=f"m{i}")

    step("list messages with paging")
    listed = convs.conversations(conv.sid).messages.list(page_size=2)
    check([m.index for m in listed] == [0, 1, 2, 3, 4], f"indexes {[m.index for m in listed]}")
    desc = convs.conversations(conv.sid).messages.list(order="desc", limit=2)
    check([m.index for m in desc] == [4, 3], f"desc indexes {[m.index for m in desc]}")

    step("participant conversations")
    pcs = convs.participant_conversations.list(identity="discord_42")
    check(len(pcs) == 1 and pcs[0].conversation_sid == conv.sid, f"participant conversations {pcs!r}")
    check(pcs[0].conversation_state == "active", f"conversation_state {pcs[0].conversation_state}")

    step("create interaction")
    inter = client.flex_api.v1.interaction.create(
        channel={"type": "chat", "initiated_by": "customer", "properties": {"media_channel_sid": conv.sid}},
        routing={
            "properties": {
                "workspace_sid": "WS0123456789abcdef0123456789abcdef",
                "workflow_sid": "WW0123456789abcdef0123456789abcdef",
                "task_channel_unique_name": "chat",
                "attributes": {"from": "discord_42", "customerName": "alice"},
            }
        },
    )
    check(inter.sid.startswith("KD"), f"interaction sid {inter.sid}")
    check(inter.channel["sid"].startswith("UO"), f"channel {inter.channel!r}")
    props = inter.routing["properties"]
    check(props["sid"].startswith("WT"), f"task sid {props.get('sid')}")
    task_attrs = json.loads(props["attributes"])
    check(task_attrs["conversationSid"] == conv.sid, f"task attributes {task_attrs!r}")
    check(task_attrs["customerName"] == "alice", f"task attributes {task_attrs!r}")

    step("close conversation, then writes fail with 50377")
    closed = convs.conversations(conv.sid).update(state="closed")
    check(closed.state == "closed", f"state {closed.state}")
    expect_error(lambda: convs.conversations(conv.sid).messages.create(body="late"), 400, 50377)

    step("unknown conversation -> 404/20404")
    expect_error(lambda: convs.conversations("CH" + "0" * 32).fetch(), 404, 20404)

    step("wrong credentials -> 401/20003")
    bad = Client(sid, "wrong-token")
    bad.conversations.base_url = url
    expect_error(lambda: bad.conversations.v1.conversations.create(), 401, 20003)

    print("SDK CONFORMANCE OK")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as exc:  # any SDK parse error or unexpected exception is a mismatch
        fail(f"{type(exc).__name__}: {exc}")
