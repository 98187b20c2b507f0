"""Drives the Genesys Cloud emulator (tests/genesys_support) with Genesys's own Python SDK
(PyPI purecloudplatformclientv2): every answer the importer relies on must deserialize into the
SDK's models, with no field the importer reads left empty or marked "outdated_sdk_version".

Usage: genesys_sdk_check.py BASE_URL CLIENT_ID CLIENT_SECRET INTERVAL CONVERSATION_ID
Prints one "ok ..." line per call; exits non-zero on the first mismatch."""

import sys

import PureCloudPlatformClientV2 as gc

base, client_id, secret, interval, conv = sys.argv[1:6]
BAD = "outdated_sdk_version"


def need(cond, what):
    if not cond:
        print(f"mismatch: {what}", file=sys.stderr)
        sys.exit(1)


# OAuth client credentials through the SDK (its login URL is the host itself on loopback).
client = gc.api_client.ApiClient(host=base).get_client_credentials_token(client_id, secret)
need(client.access_token, "token")
print("ok token")

analytics = gc.AnalyticsApi(client)
q = gc.ConversationQuery()
q.interval = interval
q.order = "asc"
q.order_by = "conversationStart"
paging = gc.PagingSpec()
paging.page_size = 100
paging.page_number = 1
q.paging = paging
res = analytics.post_analytics_conversations_details_query(q)
need(res.conversations, "conversations")
c = next(x for x in res.conversations if x.conversation_id == conv)
need(c.conversation_start is not None and c.conversation_end is not None, "start/end")
need(c.originating_direction in ("inbound", "outbound"), "originatingDirection")
purposes = {p.purpose for p in c.participants}
need({"customer", "agent"} <= purposes, f"purposes {purposes}")
agent = next(p for p in c.participants if p.purpose == "agent")
need(agent.user_id, "userId")
for p in c.participants:
    for s in p.sessions:
        need(s.media_type == "voice" and s.ani and s.dnis and s.direction not in (None, BAD), "session")
need(res.total_hits >= 1, "totalHits")
print("ok analytics query", len(res.conversations))

one = analytics.get_analytics_conversation_details(conv)
need(one.conversation_id == conv, "details")
print("ok analytics details")

rec_api = gc.RecordingApi(client)
meta = rec_api.get_conversation_recordingmetadata(conv)
need(len(meta) >= 1 and meta[0].id and meta[0].media == "audio", "recordingmetadata")
print("ok recordingmetadata")

r = rec_api.get_conversation_recording(conv, meta[0].id, format_id="MP3", download=True)
need(r.media_uris and r.media_uris["S"].media_uri.startswith(base), "mediaUris")
need(r.output_size_in_bytes and r.output_size_in_bytes > 0, "outputSizeInBytes")
print("ok recording")

user = gc.UsersApi(client).get_user(agent.user_id)
need(user.name and user.addresses and user.addresses[0].extension, "user")
need(user.addresses[0].media_type == "PHONE", "address mediaType")
print("ok user")

body = gc.Recording()
body.id = meta[0].id
body.delete_date = c.conversation_end
rec_api.put_conversation_recording(conv, meta[0].id, body)
print("ok delete")
