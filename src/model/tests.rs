use super::*;
use serde_json::json;

const CALL: &str = r#"{
  "statusCode": 0,
  "recording": {
    "id": "029UDMMJ90AOL8151CGQHG5AES000003",
    "callerPhoneNumber": "1000",
    "dialedPhoneNumber": "1002",
    "startTime": "2015-06-24T20:18:31.000+0000",
    "stopTime": "2015-06-24T20:19:36Z",
    "callType": "Inbound",
    "mediaFiles": [
      {
        "startTime": "2015-06-24T20:18:31.000+0000",
        "stopTime": "2015-06-24T20:18:42.000+0000",
        "mediaId": "029UDMMJ90AOL8151CGQHG5AES000003_2015-06-24_20-18-30-00710158-100043FD-00000001.mp3",
        "type": "audio/mp3",
        "duration": "11300",
        "size": "44928",
        "channels": 1,
        "parameters": {"agentId": "1000", "username": "agent1000", "callUuid": "029UDMMJ90AOL8151CGQHG5AES000003"},
        "partitions": ["sales"],
        "certAlias": ["tenant-cert-2015"],
        "pkcs7": "MIIB...",
        "undocumentedThing": {"x": [1, 2.50, "y"]}
      }
    ],
    "eventHistory": [
      {"occurredAt": "2015-06-24T20:18:32.000+0000", "event": "Data",
       "data": {"added": {"GSIP_RECORD": "ON", "CustomerSegment": "gold"}}},
      {"occurredAt": "2015-06-24T20:18:04.000+0000", "event": "Joined",
       "contact": {"type": "User", "userName": "agent1001"}}
    ],
    "screenRecording": true,
    "region": "us"
  }
}"#;

#[test]
fn parses_api_wrapper_and_quirks() {
    let r = Recording::parse(CALL).unwrap();
    assert_eq!(r.id, "029UDMMJ90AOL8151CGQHG5AES000003");
    assert_eq!(r.kind, Kind::Voice);
    assert_eq!(r.start.to_rfc3339(), "2015-06-24T20:18:31+00:00");
    assert_eq!(r.stop.to_rfc3339(), "2015-06-24T20:19:36+00:00");
    assert_eq!(r.region.as_deref(), Some("us"));
    assert_eq!(r.call_type.as_deref(), Some("Inbound"));
    assert!(r.screen_flag);
    assert_eq!(r.agent_user.as_deref(), Some("agent1000"));
    assert_eq!(r.agent_users, vec!["agent1000", "agent1001"]);
    assert_eq!(r.agent_id.as_deref(), Some("1000"));
    assert!(r.attached_data.contains(&("CustomerSegment".into(), "gold".into())));
    let m = &r.media[0];
    assert_eq!(m.size, Some(44928));
    assert_eq!(m.duration_ms, Some(11300));
    assert_eq!(m.channels, Some(1));
    assert!(m.encrypted);
    assert_eq!(m.cert_alias, vec!["tenant-cert-2015"]);
    assert_eq!(r.partitions, vec!["sales"]);
}

#[test]
fn unknown_fields_round_trip() {
    let r = Recording::parse(CALL).unwrap();
    let outer: Value = serde_json::from_str(CALL).unwrap();
    assert_eq!(r.doc_value(), outer["recording"]);
    // The stored text is the inner document verbatim.
    assert!(CALL.contains(r.doc()));
    let again = Recording::parse(r.doc()).unwrap();
    assert_eq!(again.doc(), r.doc());
}

#[test]
fn screen_recording() {
    let doc = json!({
        "id": "02A1MCKSD0CDNBRP1CGQHG5AES000003_2017-03-30_17-00-18",
        "callRecordingId": "02A1MCKSD0CDNBRP1CGQHG5AES000003",
        "startTime": "2017-03-30T17:00:18.000+0000",
        "stopTime": "2017-03-30T17:02:09.000+0000",
        "mediaFiles": [{
            "mediaId": "Jz0Vt5zQ55mcnS8ibDzFsA_02A1",
            "type": "video/mp4", "duration": "0:01:51", "size": "2594464",
            "parameters": {"agentID": "1000", "contact": {"userName": "agent1000"},
                           "muxed_mediaIds": ["a", "b.mp3"]}
        }],
        "eventHistory": [], "nonDelete": true, "region": "us"
    });
    let r = Recording::parse(&doc.to_string()).unwrap();
    assert_eq!(r.kind, Kind::Screen);
    assert!(r.non_delete);
    assert_eq!(r.call_recording_id.as_deref(), Some("02A1MCKSD0CDNBRP1CGQHG5AES000003"));
    assert_eq!(r.media[0].duration_ms, Some(111_000));
    assert_eq!(r.media[0].muxed_media_ids, vec!["a", "b.mp3"]);
    assert_eq!(r.agent_user.as_deref(), Some("agent1000"));
    assert_eq!(r.agent_id.as_deref(), Some("1000"));
    assert_eq!(r.doc_value(), doc);
}

#[test]
fn screen_under_parent_folder_takes_parent_id() {
    let doc = json!({"id": "s1", "startTime": "2017-03-30T17:00:18Z", "mediaFiles": []});
    let r = Recording::parse_in(&doc.to_string(), Some("call1")).unwrap();
    assert_eq!(r.kind, Kind::Screen);
    assert_eq!(r.call_recording_id.as_deref(), Some("call1"));
}

#[test]
fn bad_documents_say_why() {
    let cases = [
        ("{", "malformed JSON"),
        ("[1]", "not a JSON object"),
        (r#"{"startTime":"2015-06-24T20:18:31Z"}"#, "missing field `id`"),
        (r#"{"id":"a"}"#, "missing field `startTime`"),
        (r#"{"id":"a","startTime":"noon"}"#, "`startTime` has a time that does not parse"),
        (r#"{"id":"../x","startTime":"2015-06-24T20:18:31Z"}"#, "field `id` is invalid"),
        (
            r#"{"id":"a","startTime":"2015-06-24T20:18:31Z","mediaFiles":[{"mediaId":"../../etc/passwd"}]}"#,
            "mediaFiles[0].mediaId",
        ),
        (
            r#"{"id":"a","startTime":"2015-06-24T20:18:31Z","mediaFiles":[{"mediaId":"m","startTime":"x"}]}"#,
            "mediaFiles[0].startTime",
        ),
    ];
    for (doc, want) in cases {
        let err = Recording::parse(doc).unwrap_err().to_string();
        assert!(err.contains(want), "{doc}: {err}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[ -~]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_extra_fields_survive(extra in prop::collection::btree_map("x[a-zA-Z]{1,8}", arb_json(), 0..6)) {
            let mut doc = json!({"id": "r1", "startTime": "2015-06-24T20:18:31.000+0000",
                                 "mediaFiles": [{"mediaId": "m.mp3", "size": "12"}]});
            for (k, v) in &extra {
                doc.as_object_mut().unwrap().insert(k.clone(), v.clone());
            }
            let text = serde_json::to_string(&doc).unwrap();
            let r = Recording::parse(&text).unwrap();
            prop_assert_eq!(r.doc_value(), doc.clone());
            let wrapped = json!({"statusCode": 0, "recording": doc.clone()}).to_string();
            prop_assert_eq!(Recording::parse(&wrapped).unwrap().doc_value(), doc);
        }
    }
}
