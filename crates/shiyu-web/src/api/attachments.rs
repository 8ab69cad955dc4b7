//! Photos and documents: uploaded once, kept by content hash, served only to those who may see a case that
//! refers to them.

use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::CaseId;
use shiyu_store::AttachmentMeta;
use utoipa::{IntoParams, ToSchema};

/// The largest file accepted.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// The file's real type, read from its first bytes: the declared Content-Type is not trusted.
pub fn sniff(content: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| content.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if content.len() >= 12 && starts(b"RIFF") && &content[8..12] == b"WEBP" {
        Some("image/webp")
    } else if starts(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name as the user knows it.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedView {
    /// Refer to the file by this hash in a report's or an action's `attachments`.
    pub sha256: String,
    pub name: String,
    pub mime: String,
    pub size: i64,
    /// Only for an upload without sign-in: quote it with the hash in the report's `attachments`. A file may be
    /// attached only by whoever uploaded it — a signed-in user, or the holder of this receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// Uploads a photo (JPEG, PNG, GIF, WebP) or a PDF of at most 10 MiB as the raw request body, for signed-in
/// users; citizens without an account use the rate-limited `/api/public/attachments`.
#[utoipa::path(post, path = "/api/attachments", tag = "cases", params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = UploadedView), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn upload(
    state: State<AppState>,
    SignedIn(caller): SignedIn,
    params: Query<UploadParams>,
    _known: super::KnownParams<(UploadParams,)>,
    headers: HeaderMap,
    body: Bytes,
) -> WebResult<(StatusCode, Json<UploadedView>)> {
    store_upload(state, caller, params, &headers, body).await
}

async fn store_upload(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UploadParams>,
    headers: &HeaderMap,
    body: Bytes,
) -> WebResult<(StatusCode, Json<UploadedView>)> {
    // A form upload (`curl -F`, an HTML form) wraps the file in a multipart body whose first bytes are no
    // file's: say how to send it instead of calling a good photo the wrong type.
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.trim_start().to_ascii_lowercase().starts_with("multipart/") {
        return Err(WebError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UPLOAD_NOT_RAW",
            "请将文件本身作为请求体发送（如 curl --data-binary @照片.jpg），不要用表单上传",
            "Send the file itself as the request body (e.g. curl --data-binary @photo.jpg), not as a form",
        ));
    }
    if body.is_empty() {
        return Err(WebError::invalid("文件为空", "the file is empty"));
    }
    let mime = sniff(&body).ok_or_else(|| {
        WebError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "FILE_TYPE_NOT_ALLOWED",
            "只接受JPEG、PNG、GIF、WebP图片和PDF文件",
            "Only JPEG, PNG, GIF and WebP images and PDF documents are accepted",
        )
    })?;
    let name: String =
        params.name.unwrap_or_else(|| "附件".into()).chars().filter(|c| !c.is_control()).take(100).collect();
    let now = state.now();
    let meta = AttachmentMeta {
        sha256: shiyu_auth::sha256_hex(&body),
        mime: mime.into(),
        size: body.len() as i64,
        name: name.clone(),
        uploaded_by: caller.user().ok().map(|u| u.id),
        created_at: now,
    };
    // Signed-in users hold their uploads by name; anyone else by a receipt only they are given.
    let (holder, receipt) = match caller.user() {
        Ok(user) => (user_holder(user.id), None),
        Err(_) => {
            let receipt = shiyu_auth::random_token();
            (receipt_holder(&receipt), Some(receipt))
        }
    };
    state.store.put_attachment(&meta, &body, &holder).await?;
    state
        .store
        .audit(vec![caller.audit(
            now,
            "attachment_uploaded",
            Some(format!("attachment:{}", meta.sha256)),
            None,
        )])
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadedView { sha256: meta.sha256, name, mime: mime.into(), size: meta.size, receipt }),
    ))
}

/// The same upload for citizens without an account; rate-limited per address like every public endpoint.
#[utoipa::path(post, path = "/api/public/attachments", tag = "citizens", params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = UploadedView), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn public_upload(
    state: State<AppState>,
    caller: Caller,
    params: Query<UploadParams>,
    _known: super::KnownParams<(UploadParams,)>,
    headers: HeaderMap,
    body: Bytes,
) -> WebResult<(StatusCode, Json<UploadedView>)> {
    store_upload(state, caller, params, &headers, body).await
}

/// A file attached to a case, for those who may see the case.
#[utoipa::path(get, path = "/api/cases/{id}/attachments/{sha256}", tag = "cases",
    params(("id" = i64, Path), ("sha256" = String, Path)),
    responses((status = 200, description = "the file"), (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sha256)): Path<(i64, String)>,
) -> WebResult<Response> {
    let actor = caller.actor()?;
    super::cases::visible_case(&state, &actor, CaseId(id)).await?;
    let history = state.store.case_history(CaseId(id)).await?;
    // Only a file the caller can see in the case's history: a reporter sees their own, not the staff's.
    let listed = history
        .iter()
        .filter_map(|e| crate::views::EventView::seen_by(e, &actor))
        .find_map(|e| e.attachments.into_iter().find(|a| a.sha256 == sha256));
    let Some(listed) = listed else {
        return Err(WebError::not_found());
    };
    let (meta, content) = state.store.attachment(&sha256).await?.ok_or_else(WebError::not_found)?;
    // The name it has on this case: the same content is stored once, under whatever name it was first
    // uploaded with, perhaps by someone whose upload this caller may not see.
    let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(&listed.name));
    Ok((
        [
            (CONTENT_TYPE, meta.mime),
            (CONTENT_DISPOSITION, disposition),
            (X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        content,
    )
        .into_response())
}

/// Who holds an upload: a signed-in user, or whoever has a receipt (kept as its hash).
fn user_holder(user: shiyu_domain::UserId) -> String {
    format!("user:{}", user.0)
}

fn receipt_holder(receipt: &str) -> String {
    format!("receipt:{}", shiyu_auth::token_hash(receipt))
}

/// Refuses a file the caller did not upload as if it did not exist: a hash seen elsewhere (on a screen, in a
/// log) must not let someone attach the file to their own case and then read it through that case.
pub async fn check_uploaded(
    state: &AppState,
    caller: &Caller,
    attachments: &[crate::views::AttachmentView],
) -> WebResult<()> {
    for attachment in attachments {
        let user = caller.user().ok().map(|user| user_holder(user.id));
        let receipt = attachment.receipt.as_deref().map(receipt_holder);
        let mut uploaded = false;
        for holder in user.iter().chain(&receipt) {
            uploaded = uploaded || state.store.has_uploaded(&attachment.sha256, holder).await?;
        }
        if !uploaded {
            return Err(WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ATTACHMENT_UNKNOWN",
                "附件不存在或不是由您上传，请先上传",
                "The attachment does not exist or was not uploaded by you; upload it first",
            )
            .with_details(attachment.sha256.clone()));
        }
    }
    Ok(())
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_are_read_from_content() {
        let cases: [(&[u8], Option<&str>); 7] = [
            (b"\xFF\xD8\xFF\xE0rest", Some("image/jpeg")),
            (b"\x89PNG\r\n\x1a\nrest", Some("image/png")),
            (b"GIF89a...", Some("image/gif")),
            (b"RIFF\x00\x00\x00\x00WEBPVP8 ", Some("image/webp")),
            (b"%PDF-1.7", Some("application/pdf")),
            (b"<html><script>", None),
            (b"MZ\x90\x00", None),
        ];
        for (content, expected) in cases {
            assert_eq!(sniff(content), expected);
        }
        assert_eq!(percent_encode("现场 1.jpg"), "%E7%8E%B0%E5%9C%BA%201.jpg");
    }
}
