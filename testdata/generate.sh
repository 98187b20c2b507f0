#!/usr/bin/env bash
# Regenerates everything under testdata/ with the ffmpeg and openssl command-line tools:
# small real media (8 kHz mono MP3 and WAV voice, H.264 MP4 screen video), an RSA key and
# certificate, an encrypted (CMS EnvelopedData, DER) voice file, sample recordings in the GIR
# folder layout with the seeds' metadata quirks, and deliberately bad recordings.
#
#   bash testdata/generate.sh        # rewrites testdata/ in place (a few hundred KB)
set -euo pipefail
cd "$(dirname "$0")"
FF=(ffmpeg -hide_banner -loglevel error -y)
BITEXACT=(-fflags +bitexact -map_metadata -1)

mkdir -p media keys
# Voice: distinct tones so that sync tests can tell segments apart.
"${FF[@]}" -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=6" -ac 1 -c:a libmp3lame -b:a 32k "${BITEXACT[@]}" media/voice-440.mp3
"${FF[@]}" -f lavfi -i "sine=frequency=880:sample_rate=8000:duration=4" -ac 1 -c:a libmp3lame -b:a 32k "${BITEXACT[@]}" media/voice-880.mp3
"${FF[@]}" -f lavfi -i "sine=frequency=660:sample_rate=8000:duration=4" -ac 1 -c:a pcm_s16le "${BITEXACT[@]}" media/voice-660.wav
# Screen: 10 s of 320x240 test pattern at 5 fps, H.264, moov first.
"${FF[@]}" -f lavfi -i "testsrc=size=320x240:rate=5:duration=10" -c:v libx264 -preset veryfast -pix_fmt yuv420p \
  -movflags +faststart "${BITEXACT[@]}" -flags:v +bitexact media/screen.mp4

# Keys: an RSA key (PKCS#8) and a self-signed certificate valid for 100 years.
if [ ! -f keys/recording-key.pem ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout keys/recording-key.pem -out keys/recording-cert.pem \
    -days 36500 -subj "/CN=reclife test recording key/O=reclife" 2>/dev/null
fi

size() { stat -c %s "$1"; }

# --- sample recordings in the GIR layout -------------------------------------------------
rm -rf recordings bad
R=recordings/cc1/Environment

# Call A: 2024-03-10, Inbound, MP3, one screen recording under screen/. API wrapper, +0000 times.
A=CALLA0000000000000000000000000001
d=$R/2024/03/10/$A; mkdir -p $d/screen/${A}_2024-03-10_09-15-02
cp media/voice-440.mp3 $d/${A}_2024-03-10_09-15-00-0001.mp3
cat > $d/meta-data.json <<EOF
{
  "statusCode": 0,
  "recording": {
    "id": "$A",
    "callerPhoneNumber": "1000",
    "dialedPhoneNumber": "1002",
    "startTime": "2024-03-10T09:15:00.000+0000",
    "stopTime": "2024-03-10T09:15:06.000+0000",
    "callType": "Inbound",
    "mediaFiles": [
      {
        "mediaUri": "http://gir.example:8081/api/v2/recordings/$A/play/${A}_2024-03-10_09-15-00-0001.mp3",
        "mediaPath": "/recordings/$A/play/${A}_2024-03-10_09-15-00-0001.mp3",
        "startTime": "2024-03-10T09:15:00.000+0000",
        "stopTime": "2024-03-10T09:15:06.000+0000",
        "callUUID": "$A",
        "mediaId": "${A}_2024-03-10_09-15-00-0001.mp3",
        "type": "audio/mp3",
        "duration": "6000",
        "tenant": "Environment",
        "ivrprofile": "DefaultIVRProfile",
        "size": "$(size $d/${A}_2024-03-10_09-15-00-0001.mp3)",
        "channels": 1,
        "mediaDescriptor": {"storage": "WebDAV", "path": "/2024/03/10/${A}_2024-03-10_09-15-00-0001.mp3"},
        "parameters": {"agentId": "1000", "username": "agent1000", "callUuid": "$A", "partitions": "sales",
                       "rp.speechminer_uri": "http://sm/interactionreceiver"},
        "partitions": ["sales"],
        "accessgroups": ["/team1"]
      }
    ],
    "eventHistory": [
      {"occurredAt": "2024-03-10T09:14:58.000+0000", "calluuid": "$A", "event": "Joined",
       "contact": {"type": "User", "phoneNumber": "1000", "userName": "agent1000", "firstName": "Ann", "lastName": "Agent"}},
      {"occurredAt": "2024-03-10T09:15:01.000+0000", "calluuid": "$A", "event": "Data",
       "data": {"added": {"GSIP_RECORD": "ON", "CustomerSegment": "gold"}}}
    ],
    "screenRecording": true,
    "region": "us",
    "x-undocumented": {"kept": true}
  }
}
EOF
S=${A}_2024-03-10_09-15-02
cp media/screen.mp4 $d/screen/$S/Jz0Vt5zQ55mcnS8ibDzFsA_${S}.mp4
cat > $d/screen/$S/meta-data.json <<EOF
{
  "id": "$S",
  "callRecordingId": "$A",
  "startTime": "2024-03-10T09:15:02.000+0000",
  "stopTime": "2024-03-10T09:15:12.000+0000",
  "mediaFiles": [
    {
      "mediaUri": "http://gir.example:8081/api/v2/recordings/$A/play/screen.mp4",
      "mediaPath": "/screen-recordings/$S/content/screen.mp4",
      "playPath": "/screen-recordings/$S/content/screen.mp4",
      "startTime": "2024-03-10T09:15:02.000+0000",
      "stopTime": "2024-03-10T09:15:12.000+0000",
      "mediaId": "Jz0Vt5zQ55mcnS8ibDzFsA_${S}.mp4",
      "type": "video/mp4",
      "duration": "0:00:10",
      "size": "$(size media/screen.mp4)",
      "parameters": {"agentID": "1000", "contact": {"userName": "agent1000", "firstName": "Ann", "lastName": "Agent"},
                     "virtualWidth": "320", "virtualHeight": "240", "region": "us", "callUuid": "$A",
                     "monitors": [{"name": "monitor_0", "primary": true, "originalPositions": "[0, 0, 320, 240]"}]}
    }
  ],
  "eventHistory": [],
  "nonDelete": false,
  "region": "us"
}
EOF

# Call B: 2024-04-02, Outbound, WAV, protected (nonDelete), bare document with Z times.
B=CALLB0000000000000000000000000002
d=$R/2024/04/02/$B; mkdir -p $d
cp media/voice-660.wav $d/${B}_0001.wav
cat > $d/meta-data.json <<EOF
{
  "id": "$B",
  "callerPhoneNumber": "2000",
  "dialedPhoneNumber": "2002",
  "startTime": "2024-04-02T14:00:00Z",
  "stopTime": "2024-04-02T14:00:04Z",
  "callType": "Outbound",
  "mediaFiles": [
    {"mediaId": "${B}_0001.wav", "type": "audio/wav", "startTime": "2024-04-02T14:00:00Z", "stopTime": "2024-04-02T14:00:04Z",
     "duration": "4000", "size": $(size $d/${B}_0001.wav), "channels": 1, "tenant": "Environment",
     "parameters": {"agentId": "2000", "username": "agent2000"}, "partitions": ["support"], "accessgroups": ["/team2"]}
  ],
  "eventHistory": [],
  "screenRecording": false,
  "nonDelete": true,
  "region": "us"
}
EOF

# Call C: yesterday of the quickstart's --now (2025-06-24), encrypted MP3 (attached CMS, DER),
# with a screen recording stored separately that carries callRecordingId. +00:00 times.
C=CALLC0000000000000000000000000003
d=$R/2025/06/24/$C; mkdir -p $d
openssl cms -encrypt -binary -outform DER -aes-256-cbc -in media/voice-880.mp3 -out $d/${C}_0001.mp3 keys/recording-cert.pem
cat > $d/meta-data.json <<EOF
{
  "id": "$C",
  "callerPhoneNumber": "3000",
  "dialedPhoneNumber": "3002",
  "startTime": "2025-06-24T10:00:00.000+00:00",
  "stopTime": "2025-06-24T10:00:04.000+00:00",
  "callType": "Inbound",
  "mediaFiles": [
    {"mediaId": "${C}_0001.mp3", "type": "audio/mp3", "startTime": "2025-06-24T10:00:00.000+00:00",
     "stopTime": "2025-06-24T10:00:04.000+00:00", "duration": "4000", "size": "$(size $d/${C}_0001.mp3)", "channels": 1,
     "certAlias": ["recording-cert"], "tenant": "Environment",
     "parameters": {"agentId": "3000", "username": "agent3000", "callUuid": "$C"}, "partitions": ["sales"]}
  ],
  "eventHistory": [{"occurredAt": "2025-06-24T10:00:01.000+0000", "event": "Data", "data": {"added": {"CustomerSegment": "silver"}}}],
  "screenRecording": true,
  "labels": ["quality-review"],
  "region": "us"
}
EOF
SC=${C}_2025-06-24_10-00-00
d=$R/2025/06/24/$SC; mkdir -p $d
cp media/screen.mp4 $d/${SC}.mp4
cat > $d/meta-data.json <<EOF
{
  "id": "$SC",
  "callRecordingId": "$C",
  "startTime": "2025-06-24T10:00:00.000+0000",
  "stopTime": "2025-06-24T10:00:10.000+0000",
  "mediaFiles": [{"mediaId": "${SC}.mp4", "type": "video/mp4", "duration": "0:00:10", "size": "$(size $d/${SC}.mp4)",
                  "startTime": "2025-06-24T10:00:00.000+0000", "stopTime": "2025-06-24T10:00:10.000+0000",
                  "parameters": {"agentID": "3000", "contact": {"userName": "agent3000"}}}],
  "eventHistory": [],
  "nonDelete": false,
  "region": "us"
}
EOF

# Call D: 2025-06-24, region eu, two MP3 segments.
D=CALLD0000000000000000000000000004
d=$R/2025/06/24/$D; mkdir -p $d
cp media/voice-440.mp3 $d/${D}_0001.mp3
cp media/voice-880.mp3 $d/${D}_0002.mp3
cat > $d/meta-data.json <<EOF
{
  "id": "$D",
  "startTime": "2025-06-24T16:30:00.000+0000",
  "stopTime": "2025-06-24T16:30:12.000+0000",
  "callType": "Internal",
  "mediaFiles": [
    {"mediaId": "${D}_0001.mp3", "type": "audio/mp3", "startTime": "2025-06-24T16:30:00.000+0000",
     "stopTime": "2025-06-24T16:30:06.000+0000", "duration": "6000", "size": "$(size $d/${D}_0001.mp3)", "channels": 1},
    {"mediaId": "${D}_0002.mp3", "type": "audio/mp3", "startTime": "2025-06-24T16:30:08.000+0000",
     "stopTime": "2025-06-24T16:30:12.000+0000", "duration": "4000", "size": "$(size $d/${D}_0002.mp3)", "channels": 1}
  ],
  "eventHistory": [],
  "screenRecording": false,
  "region": "eu"
}
EOF

# --- bad recordings: each must be rejected with a reason naming its file ------------------
mk() { mkdir -p "bad/$1"; printf '%s' "$2" > "bad/$1/meta-data.json"; }
mk malformed '{"id": "BAD1", "startTime": '
mk no-id '{"startTime": "2024-01-01T00:00:00Z", "mediaFiles": []}'
mk bad-time '{"id": "BAD3", "startTime": "yesterday at noon", "mediaFiles": []}'
mk missing-media '{"id": "BAD4", "startTime": "2024-01-01T00:00:00Z", "mediaFiles": [{"mediaId": "nowhere.mp3", "type": "audio/mp3"}]}'
mk escaping-media '{"id": "BAD5", "startTime": "2024-01-01T00:00:00Z", "mediaFiles": [{"mediaId": "../../../etc/passwd", "type": "audio/mp3"}]}'
mk escaping-id '{"id": "../../BAD6", "startTime": "2024-01-01T00:00:00Z", "mediaFiles": []}'
mkdir -p bad/good; cp media/voice-440.mp3 bad/good/GOOD1.mp3
printf '%s' '{"id": "GOOD1", "startTime": "2024-01-01T00:00:00Z", "mediaFiles": [{"mediaId": "GOOD1.mp3", "type": "audio/mp3"}]}' > bad/good/meta-data.json
echo "testdata regenerated: $(du -sh . | cut -f1)"
