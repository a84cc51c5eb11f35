//! The API's OpenAPI 3.1 document, generated from the contract's own types and the handlers'
//! annotations, and a page that shows it. The callbacks the backend receives are the document's
//! `webhooks`: they are part of the contract as much as the endpoints are.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use ecg_core::contract::{Callback, TranscribeRequest};
use serde_json::{Value, json};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::upload::FILE_PART;
use crate::{openai, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ECG Audio Analyzer",
        description = "Speech analysis for video platforms: speech found, speakers told apart, \
                       words transcribed with their timings, each word's loudness, pitch and \
                       brightness. Jobs run asynchronously; progress and the result are posted to \
                       the backend (see `webhooks`)."
    ),
    paths(
        routes::process_video,
        routes::transcribe,
        routes::new_upload,
        routes::job_status,
        routes::job_result,
        routes::job_preview,
        routes::health,
        openai::transcriptions
    ),
    components(schemas(Callback)),
    modifiers(&BearerToken, &FormBodies)
)]
struct ApiDoc;

/// The bearer token every route but `/health` and the documentation asks for, when one is set.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The form uploads, which the handlers read part by part rather than through a type.
struct FormBodies;

impl Modify for FormBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let file = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/octet-stream")
                .description(Some("The media, audio or video"))
        };
        // `/transcribe`: the JSON body's fields as form fields, the media in `file`.
        let transcribe = AllOfBuilder::new()
            .item(Ref::from_schema_name(TranscribeRequest::name()))
            .item(
                ObjectBuilder::new()
                    .property(FILE_PART, file())
                    .required(FILE_PART),
            );
        add_form("/transcribe", transcribe.into(), openapi);
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let openai = ObjectBuilder::new()
            .property(FILE_PART, file())
            .required(FILE_PART)
            .property(
                "model",
                text("Any value; the `x-ecg-model` header names the model that ran"),
            )
            .property("language", text("auto, ko, en, ja or zh; auto when absent"))
            .property(
                "response_format",
                text("The answer's shape").enum_values(Some([
                    "json",
                    "text",
                    "srt",
                    "vtt",
                    "verbose_json",
                ])),
            )
            .property(
                "timestamp_granularities[]",
                ArrayBuilder::new().items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["word", "segment"])),
                ),
            );
        add_form("/v1/audio/transcriptions", openai.into(), openapi);
    }
}

/// Lets the `POST` at `path` take a `multipart/form-data` body of `schema`.
fn add_form(path: &str, schema: Schema, openapi: &mut utoipa::openapi::OpenApi) {
    if let Some(operation) = openapi
        .paths
        .paths
        .get_mut(path)
        .and_then(|item| item.post.as_mut())
    {
        operation
            .request_body
            .get_or_insert_with(RequestBody::new)
            .content
            .insert("multipart/form-data".to_owned(), Content::new(Some(schema)));
    }
}

/// The whole document, callbacks included, as `GET /openapi.json` serves it.
pub fn document() -> String {
    let mut document = ApiDoc::openapi();
    // OpenAPI 3.1's top-level `webhooks`, which utoipa has no field for.
    document
        .extensions
        .get_or_insert_with(Default::default)
        .insert("webhooks".to_owned(), webhooks());
    document.to_pretty_json().unwrap_or_default() + "\n"
}

fn webhooks() -> Value {
    json!({
        "jobCallback": {
            "post": {
                "summary": "Progress, completion or failure of a job",
                "description": "Posted to `{fastapi_base_url}/api/upload-video/result` (or the \
                    configured backend URL): `processing` at 10, 25, 40, 60, 75 and 90 %, then \
                    once `completed` with the `result` or `failed` with `error_code` and \
                    `error_message`. `X-Callback-Id` (`<job_id>:<status>:<progress>`) names each \
                    callback stably across retries so that a backend drops duplicates.",
                "requestBody": {
                    "required": true,
                    "content": { "application/json": {
                        "schema": { "$ref": format!("#/components/schemas/{}", Callback::name()) }
                    } }
                },
                "responses": { "200": { "description": "Received; any 2xx ends the retries" } }
            }
        }
    })
}

/// `GET /openapi.json` and `GET /docs`, open like `/health`: the contract is no secret.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let json_body = document();
    let page = serde_json::from_str(&json_body)
        .map(|document| docs_page(&document))
        .unwrap_or_default();
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json_body) }),
        )
        .route(
            "/docs",
            get(move || async move { Html(page).into_response() }),
        )
}

/// A self-contained page (no script, no CDN) listing every operation and schema of `document`.
fn docs_page(document: &Value) -> String {
    let title = escape(document["info"]["title"].as_str().unwrap_or_default());
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} API</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         code,pre{{background:#f4f4f4;padding:0 .2rem}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}}\
         </style></head><body><h1>{title}</h1><p>{}</p>\
         <p>The machine-readable document: <a href=\"openapi.json\">openapi.json</a>.</p>",
        escape(document["info"]["description"].as_str().unwrap_or_default())
    );
    html.push_str("<h2>Endpoints</h2>");
    for (path, operations) in entries(&document["paths"]) {
        for (method, operation) in entries(operations) {
            html.push_str(&operation_html(&method.to_uppercase(), path, operation));
        }
    }
    html.push_str("<h2>Callbacks</h2>");
    for (_, operations) in entries(&document["webhooks"]) {
        for (method, operation) in entries(operations) {
            let target = "{fastapi_base_url}/api/upload-video/result";
            html.push_str(&operation_html(&method.to_uppercase(), target, operation));
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in entries(&document["components"]["schemas"]) {
        html.push_str(&schema_html(name, schema));
    }
    html.push_str("</body></html>");
    html
}

fn operation_html(method: &str, path: &str, operation: &Value) -> String {
    let mut html = format!(
        "<h3 id=\"{method}{}\"><code>{method} {}</code></h3>",
        escape(path),
        escape(path)
    );
    if let Some(text) = operation["description"]
        .as_str()
        .or(operation["summary"].as_str())
    {
        html.push_str(&format!("<p>{}</p>", escape(text)));
    }
    if let Some(body) = operation["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.values().next())
    {
        html.push_str(&format!("<p>Body: {}</p>", type_html(&body["schema"])));
    }
    html.push_str("<table><tr><th>status</th><th>body</th><th>meaning</th></tr>");
    for (status, response) in entries(&operation["responses"]) {
        let body = response["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| type_html(&c["schema"]))
            .unwrap_or_default();
        let meaning = escape(response["description"].as_str().unwrap_or_default());
        html.push_str(&format!(
            "<tr><td>{status}</td><td>{body}</td><td>{meaning}</td></tr>"
        ));
    }
    html.push_str("</table>");
    html
}

fn schema_html(name: &str, schema: &Value) -> String {
    let mut html = format!("<h3 id=\"{0}\">{0}</h3>", escape(name));
    if let Some(text) = schema["description"].as_str() {
        html.push_str(&format!("<p>{}</p>", escape(text)));
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect();
        html.push_str(&format!("<p>One of {}.</p>", values.join(", ")));
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = entries(&schema["properties"]);
    if !properties.is_empty() {
        html.push_str("<table><tr><th>field</th><th>type</th><th></th><th>meaning</th></tr>");
        for (field, property) in properties {
            let need = if required.contains(&field) {
                "required"
            } else {
                ""
            };
            let meaning = escape(property["description"].as_str().unwrap_or_default());
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{need}</td><td>{meaning}</td></tr>",
                escape(field),
                type_html(property)
            ));
        }
        html.push_str("</table>");
    }
    html
}

/// A schema's type in a few words, linking to the named schemas it refers to.
fn type_html(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = escape(reference.rsplit('/').next().unwrap_or_default());
        return format!("<a href=\"#{name}\">{name}</a>");
    }
    if let Some(alternatives) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let parts: Vec<String> = alternatives.iter().map(type_html).collect();
        return parts.join(" or ");
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        Value::String(kind) => kind.clone(),
        _ => String::new(),
    };
    if kind.starts_with("array") {
        return format!("array of {}", type_html(&schema["items"]));
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        return format!("map of {}", type_html(values));
    }
    escape(&kind)
}

fn entries(value: &Value) -> Vec<(&str, &Value)> {
    value
        .as_object()
        .map(|map| map.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str) -> (StatusCode, String, String) {
        let app: Router = routes();
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let kind = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, kind, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn serves_the_document_and_a_page_of_every_operation_and_schema() {
        let (status, kind, body) = get("/openapi.json").await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::OK, "application/json")
        );
        assert_eq!(body, document());
        let document: Value = serde_json::from_str(&body).unwrap();

        let (status, kind, page) = get("/docs").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/html"), "{kind}");
        for (path, operations) in entries(&document["paths"]) {
            for (method, _) in entries(operations) {
                let heading = format!("<code>{} {}</code>", method.to_uppercase(), escape(path));
                assert!(page.contains(&heading), "{heading} missing");
            }
        }
        for (name, _) in entries(&document["components"]["schemas"]) {
            assert!(
                page.contains(&format!("<h3 id=\"{name}\">")),
                "{name} missing"
            );
        }
        assert!(page.contains("POST {fastapi_base_url}/api/upload-video/result"));
        assert!(!page.contains("<script"), "the page needs no script");
    }

    #[test]
    fn types_read_as_words_and_link_to_their_schemas() {
        let schema =
            json!({"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Segment"}});
        assert_eq!(
            type_html(&schema),
            "array of <a href=\"#Segment\">Segment</a>"
        );
        let map = json!({"type": "object", "additionalProperties": {"type": "number"}});
        assert_eq!(type_html(&map), "map of number");
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
