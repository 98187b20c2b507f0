//! The OpenAPI 3.0 document of every route, served at `GET /api/v1/openapi.json`.
//!
//! Written by hand next to the routes; `tests/api_contract.rs` keeps it true (every route the
//! source registers is documented and every documented operation answers as documented), and CI
//! runs schemathesis against a live server from it.

use axum::Json;
use serde_json::{json, Map, Value};

fn path_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } })
}

fn query_param(name: &str, schema: Value, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": what, "schema": schema })
}

/// The RWS envelope every JSON answer has: `statusCode` 0 on success.
fn envelope() -> Value {
    json!({
        "type": "object",
        "required": ["statusCode"],
        "properties": { "statusCode": { "type": "integer" }, "statusMessage": { "type": "string" } }
    })
}

fn json_response(what: &str) -> Value {
    json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Envelope" } } } })
}

fn error(what: &str) -> Value {
    json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// An operation: summary, parameters, an optional JSON body schema, and its answers by status.
fn op(summary: &str, params: Vec<Value>, body: Option<Value>, ok: &[(&str, &str)], errors: &[(&str, &str)]) -> Value {
    let mut responses = Map::new();
    for (code, what) in ok {
        responses.insert(code.to_string(), json_response(what));
    }
    responses.insert("400".into(), error("a bad parameter or body"));
    responses.insert("401".into(), error("no or wrong credentials"));
    responses.insert("403".into(), error("the user role may not do this, or a write from another origin"));
    responses.insert("500".into(), error("the catalog or the store failed"));
    for (code, what) in errors {
        responses.insert(code.to_string(), error(what));
    }
    let mut o = json!({ "summary": summary, "parameters": params, "responses": responses });
    if let Some(schema) = body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    o
}

fn raw(summary: &str, params: Vec<Value>, content: &[&str], codes: &[(&str, &str)]) -> Value {
    let mut responses = Map::new();
    for (code, what) in codes {
        let mut c = Map::new();
        for t in content {
            c.insert(t.to_string(), json!({ "schema": { "type": "string", "format": "binary" } }));
        }
        responses.insert(code.to_string(), json!({ "description": what, "content": c }));
    }
    for (code, what) in
        [("400", "a bad parameter"), ("401", "no or wrong credentials"), ("403", "the user role may not do this")]
    {
        responses.entry(code.to_string()).or_insert_with(|| error(what));
    }
    json!({ "summary": summary, "parameters": params, "responses": responses })
}

fn listing_params() -> Vec<Value> {
    vec![
        query_param(
            "startTime",
            json!({ "type": "integer", "format": "int64" }),
            "recordings that started at or after it (epoch ms)",
        ),
        query_param(
            "endTime",
            json!({ "type": "integer", "format": "int64" }),
            "recordings that ended at or before it (epoch ms)",
        ),
        query_param("limit", json!({ "type": "integer", "minimum": 1, "maximum": 1000 }), "page size, default 100"),
        query_param("cursor", json!({ "type": "string", "maxLength": 1024 }), "opaque; as given in nextUri"),
        query_param("region", json!({ "type": "string", "maxLength": 1024 }), "the recording's region"),
        query_param(
            "userName",
            json!({ "type": "string", "maxLength": 1024 }),
            "agents' user names (* wildcard), any of at most 32 terms, all with AND",
        ),
        query_param(
            "userData",
            json!({ "type": "string", "maxLength": 1024 }),
            "attached data values (* wildcard), any of at most 32 terms",
        ),
        query_param("callerPhoneNumber", json!({ "type": "string", "maxLength": 1024 }), "ANI (* wildcard)"),
        query_param("dialedPhoneNumber", json!({ "type": "string", "maxLength": 1024 }), "DNIS (* wildcard)"),
        query_param("scanAndScroll", json!({ "type": "boolean" }), "accepted; every listing scrolls"),
    ]
}

fn label_body() -> Value {
    json!({ "type": "object", "required": ["label"], "additionalProperties": false,
            "properties": { "label": { "type": "string", "minLength": 1 } } })
}

fn hold_body() -> Value {
    json!({ "type": "object", "required": ["reason"], "additionalProperties": false,
            "properties": { "reason": { "type": "string", "minLength": 1 } } })
}

fn task_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type"],
        "additionalProperties": false,
        "properties": {
            "type": { "type": "string", "enum": ["backup", "purge"] },
            "filter": { "type": "object", "description": "a rule file's [tasks.filter] fields (recording_type, min_age, max_age, call_type, labels_include, labels_exclude, attached_data, attached_data_not, partitions)" },
            "include_screen": { "type": "boolean" },
            "on_failure": { "type": "string", "enum": ["stop", "continue"] },
            "location": { "type": "string" },
            "zip": { "type": "boolean" },
            "use_full_path": { "type": "boolean" },
            "all_ages": { "type": "boolean", "description": "confirms a purge of every age (min_age unset or 0)" }
        }
    })
}

/// The document.
pub fn document_value() -> Value {
    let id = || path_param("id", "recording id");
    let media = || path_param("media", "mediaId");
    let ccid = || path_param("ccid", "contact center id ([api]'s node contact_center_id)");
    let job = || path_param("id", "job id");
    let rule = || path_param("name", "rule name");
    // What media is served as: an allow-listed audio or video type, else an attachment.
    let media_types: Vec<&str> =
        super::rws::media_served_types().iter().copied().chain(["application/octet-stream"]).collect();
    let play_codes = [
        (
            "200",
            "the stored bytes (an encrypted file: its plaintext, decrypted by the server; X-Reclife-Key names the key)",
        ),
        ("206", "the requested range"),
        ("404", "no such recording or media"),
        ("416", "range not satisfiable"),
        (
            "500",
            "an encrypted file this node cannot open (no key store or no key for it, or too large), or a store failure",
        ),
    ];
    let mut paths = Map::new();
    // Every write is JSON (`api::origin`): 415 otherwise; one that reads no body takes any JSON
    // (an empty body too), and says so.
    let mut add = |path: &str, method: &str, mut o: Value| {
        if method != "get" {
            o["responses"]["415"] = error("not Content-Type: application/json");
            if o.get("requestBody").is_none() {
                o["requestBody"] = json!({ "required": false, "content": { "application/json": {
                    "schema": { "type": "object", "description": "ignored" } } } });
            }
        }
        let e = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        e[method] = o;
    };
    add("/api/v2/diagnostics/version", "get", op("server version", vec![], None, &[("200", "version")], &[]));
    add("/api/v2/ops/contact-centers", "get", op("contact centers (ops)", vec![], None, &[("200", "uris")], &[]));
    let listing = |what: &str| {
        op(
            what,
            listing_params(),
            None,
            &[("200", "recordings and, unless last, nextUri")],
            &[("400", "bad parameter")],
        )
    };
    add("/api/v2/recordings", "get", listing("call recordings, scan and scroll"));
    add("/api/v2/screen-recordings", "get", listing("screen recordings, scan and scroll"));
    let mut ops_listing = listing("call recordings of a contact center (ops)");
    ops_listing["parameters"].as_array_mut().into_iter().for_each(|a| a.insert(0, ccid()));
    ops_listing["responses"]["404"] = error("unknown contact center");
    add("/api/v2/ops/contact-centers/{ccid}/recordings", "get", ops_listing);
    for (base, kind) in [("/api/v2/recordings/{id}", "call"), ("/api/v2/screen-recordings/{id}", "screen")] {
        add(
            base,
            "get",
            op(
                &format!("one {kind} recording, with mediaUri"),
                vec![id()],
                None,
                &[("200", "recording")],
                &[("404", "no such recording")],
            ),
        );
        add(
            base,
            "delete",
            op(
                &format!("delete a {kind} recording and its media (journaled, audited; ops)"),
                vec![id()],
                None,
                &[("200", "deleted ids")],
                &[("404", "no such recording"), ("409", "held, or changed while being deleted")],
            ),
        );
        add(
            &format!("{base}/labels"),
            "post",
            op(
                "add a label (ops)",
                vec![id()],
                Some(label_body()),
                &[("200", "labels")],
                &[("400", "bad body"), ("404", "no such recording")],
            ),
        );
        let mut unlabel = op(
            "remove a label (ops)",
            vec![id(), path_param("label", "the label")],
            None,
            &[("200", "labels")],
            &[("404", "no such recording")],
        );
        unlabel["parameters"][1]["schema"]["minLength"] = json!(1);
        add(&format!("{base}/labels/{{label}}"), "delete", unlabel);
        add(
            &format!("{base}/hold"),
            "post",
            op(
                "place a hold (ops)",
                vec![id()],
                Some(hold_body()),
                &[("200", "held")],
                &[("400", "bad body"), ("404", "no such recording")],
            ),
        );
        add(
            &format!("{base}/hold"),
            "delete",
            op("release a hold (ops)", vec![id()], None, &[("200", "released")], &[("404", "no such recording")]),
        );
    }
    add(
        "/api/v2/ops/contact-centers/{ccid}/recordings/{id}",
        "get",
        op(
            "one call recording (ops)",
            vec![ccid(), id()],
            None,
            &[("200", "recording")],
            &[("404", "no such recording or contact center")],
        ),
    );
    add(
        "/api/v2/recordings/{id}/play/{media}",
        "get",
        raw("a call's media file (Range supported)", vec![id(), media()], &media_types, &play_codes),
    );
    add(
        "/api/v2/ops/contact-centers/{ccid}/recordings/{id}/play/{media}",
        "get",
        raw("a call's media file (ops)", vec![ccid(), id(), media()], &media_types, &play_codes),
    );
    add(
        "/api/v2/screen-recordings/{id}/content/{media}",
        "get",
        raw("a screen recording's media file", vec![id(), media()], &media_types, &play_codes),
    );
    add(
        "/internal-api/contact-centers/{ccid}/recordings",
        "post",
        op(
            "ingest a metadata document whose media is in the store (ops)",
            vec![ccid()],
            Some(
                json!({ "type": "object", "description": "a GIR recording metadata document, bare or as {\"recording\":{…}}" }),
            ),
            &[("200", "inserted, updated or unchanged")],
            &[
                ("400", "bad document or media missing from the store"),
                ("404", "unknown contact center"),
                ("409", "held"),
            ],
        ),
    );
    // reclife's own.
    add(
        "/api/v1/jobs",
        "get",
        op(
            "jobs, oldest first",
            vec![
                query_param(
                    "limit",
                    json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
                    "page size, default 100",
                ),
                query_param("after", json!({ "type": "string", "maxLength": 256 }), "the next page after this job id"),
            ],
            None,
            &[("200", "jobs and, unless last, next")],
            &[("400", "bad parameter")],
        ),
    );
    add(
        "/api/v1/jobs",
        "post",
        op(
            "plan a job (ops); it stays planned until started",
            vec![],
            Some(json!({
                "type": "object", "additionalProperties": false,
                "properties": { "rule": { "type": "string" }, "tasks": { "type": "array", "items": task_schema() }, "all_ages": { "type": "boolean" } }
            })),
            &[("200", "the planned job and its plan")],
            &[("400", "bad tasks"), ("404", "no such rule")],
        ),
    );
    add(
        "/api/v1/jobs/{id}",
        "get",
        op(
            "a job with its tasks, counts, failed and skipped items",
            vec![job()],
            None,
            &[("200", "job")],
            &[("404", "no such job")],
        ),
    );
    add(
        "/api/v1/jobs/{id}/start",
        "post",
        op(
            "execute a planned job (ops)",
            vec![job()],
            None,
            &[("202", "started")],
            &[("404", "no such job"), ("409", "not planned")],
        ),
    );
    add(
        "/api/v1/jobs/{id}/cancel",
        "post",
        op(
            "cancel a job (ops)",
            vec![job()],
            None,
            &[("200", "cancelled or asked to stop")],
            &[("404", "no such job")],
        ),
    );
    let mut events = raw(
        "a job's live progress (server-sent events: progress, end)",
        vec![job()],
        &["text/event-stream"],
        &[("200", "event stream")],
    );
    events["responses"]["404"] = error("no such job");
    add("/api/v1/jobs/{id}/events", "get", events);
    add(
        "/api/v1/rules",
        "get",
        op("the catalog's rules, versions, overrides, problems", vec![], None, &[("200", "rules")], &[]),
    );
    let validate = op(
        "validate a rule file (ops)",
        vec![],
        Some(json!({ "type": "object", "required": ["text"], "additionalProperties": false,
                     "properties": { "text": { "type": "string", "description": "a rule file's TOML" } } })),
        &[("200", "valid or problems with lines")],
        &[],
    );
    add("/api/v1/rules/validate", "post", validate);
    add(
        "/api/v1/rules/{name}",
        "get",
        op("one rule, its text and every version", vec![rule()], None, &[("200", "rule")], &[("404", "no such rule")]),
    );
    add(
        "/api/v1/rules/{name}",
        "put",
        op(
            "store a rule in the catalog, shared by every node (ops): its next version, or unchanged",
            vec![rule()],
            Some(json!({ "type": "object", "additionalProperties": false,
                         "properties": {
                             "text": { "type": "string", "description": "a rule file's TOML" },
                             "rule": { "type": "object", "description": "the rule file's fields as JSON" } } })),
            &[("200", "created, updated or unchanged, with the version")],
            &[("409", "another process is writing the rules")],
        ),
    );
    add(
        "/api/v1/rules/{name}",
        "delete",
        op(
            "delete a rule (ops): a tombstone version naming the caller",
            vec![rule()],
            None,
            &[("200", "deleted")],
            &[("404", "no such rule")],
        ),
    );
    for (verb, what) in [
        ("enable", "run the rule whatever its file says"),
        ("disable", "skip the rule's fires"),
        ("reset", "drop the override"),
    ] {
        add(
            &format!("/api/v1/rules/{{name}}/{verb}"),
            "post",
            op(
                &format!("{what} (ops)"),
                vec![rule()],
                None,
                &[("200", "the rule as it now stands")],
                &[("404", "no such rule"), ("409", "the file does not validate")],
            ),
        );
    }
    add("/api/v1/muxer", "get", op("muxed and failed pairs", vec![], None, &[("200", "status")], &[]));
    add(
        "/api/v1/muxer/retry/{screen}",
        "post",
        op(
            "forget a pair's failures (ops)",
            vec![path_param("screen", "screen recording id")],
            None,
            &[("200", "retried at the next pass")],
            &[("404", "no record of that pair")],
        ),
    );
    add(
        "/api/v1/check",
        "get",
        op("what reclife check finds, repairing nothing (ops)", vec![], None, &[("200", "report")], &[]),
    );
    add(
        "/api/v1/check/repair",
        "post",
        op("reclife check --repair: repair what is safe (ops)", vec![], None, &[("200", "report")], &[]),
    );
    let source = || path_param("name", "import source name ([import.NAME])");
    add(
        "/api/v1/import/sources",
        "get",
        op(
            "every import source: cursor, retry buffer, last batch, alerts, totals",
            vec![],
            None,
            &[("200", "sources")],
            &[],
        ),
    );
    add(
        "/api/v1/import/sources/{name}",
        "get",
        op("one import source", vec![source()], None, &[("200", "source")], &[("404", "no such source")]),
    );
    add(
        "/api/v1/import/sources/{name}/cursor",
        "post",
        op(
            "set the cursor (ops)",
            vec![source()],
            Some(json!({ "type": "object", "required": ["cursor"], "additionalProperties": false,
                "properties": { "cursor": { "type": "string", "description": "id;yyyy.MM.dd HH:mm:ss.SSS (UTC)" } } })),
            &[("200", "the cursor set")],
            &[("404", "no such source"), ("409", "a run holds the source")],
        ),
    );
    add(
        "/api/v1/import/sources/{name}/retry",
        "post",
        op(
            "put a conversation in the retry buffer (ops)",
            vec![source()],
            Some(json!({ "type": "object", "required": ["conversation_id"], "additionalProperties": false,
                "properties": { "conversation_id": { "type": "string" } } })),
            &[("200", "the retry buffer")],
            &[("404", "no such source")],
        ),
    );
    add(
        "/api/v1/import/sources/{name}/retry/{conversation}",
        "delete",
        op(
            "take a conversation out of the retry buffer (ops)",
            vec![source(), path_param("conversation", "conversation id")],
            None,
            &[("200", "the retry buffer")],
            &[("404", "no such source, or not in the retry buffer")],
        ),
    );
    add("/api/v1/openapi.json", "get", raw("this document", vec![], &["application/json"], &[("200", "OpenAPI 3.0")]));
    add("/metrics", "get", raw("Prometheus metrics", vec![], &["application/openmetrics-text"], &[("200", "metrics")]));
    add("/healthz", "get", raw("liveness (no authentication)", vec![], &["text/plain"], &[("200", "ok")]));
    add(
        "/readyz",
        "get",
        raw(
            "readiness: the catalog answers (no authentication)",
            vec![],
            &["text/plain"],
            &[("200", "ready"), ("503", "not ready")],
        ),
    );

    for p in ["/healthz", "/readyz", "/api/v1/openapi.json"] {
        paths[p]["get"]["security"] = json!([]);
    }

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "reclife API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "GIR Interaction Recording Web Services compatible endpoints (/api/v2, /internal-api) and reclife's own (/api/v1). HTTP Basic; role user reads and plays, role ops may do everything. Every write (POST, PUT, PATCH, DELETE) says Content-Type: application/json (415 otherwise) and, when it carries Origin or Referer, comes from this server's origin (403 otherwise)."
        },
        "components": {
            "securitySchemes": { "basic": { "type": "http", "scheme": "basic" } },
            "schemas": {
                "Envelope": envelope(),
                "Error": {
                    "type": "object",
                    "required": ["statusCode", "statusMessage"],
                    "properties": { "statusCode": { "type": "integer", "minimum": 1 }, "statusMessage": { "type": "string" } }
                }
            }
        },
        "security": [{ "basic": [] }],
        "paths": paths,
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(document_value())
}
