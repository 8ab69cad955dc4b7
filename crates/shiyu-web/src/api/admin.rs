//! Reference data for every staff member; users, API tokens and the audit log for admins.

use super::{page_size, require, JsonBody};
use crate::auth::{hash_checked, scope_fits, Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::views::{CategoryView, DepartmentView, JurisdictionView, MatterView, Page, UserView};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::{Capability, DepartmentId, Role, Scope, UserId};
use shiyu_store::{ApiToken, NewUser};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JurisdictionParams {
    /// List the children of the jurisdiction with this id; without a parent, the top of the tree.
    pub parent: Option<i64>,
    /// List the children of the jurisdiction with this division code (e.g. `320613`) instead.
    pub parent_code: Option<String>,
}

/// The jurisdiction tree, one level at a time. A parent that does not exist answers 404, not an empty list.
#[utoipa::path(get, path = "/api/jurisdictions", tag = "reference data", params(JurisdictionParams),
    responses((status = 200, body = Vec<JurisdictionView>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn jurisdictions(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<JurisdictionParams>,
    _known: super::KnownParams<(JurisdictionParams,)>,
) -> WebResult<Json<Vec<JurisdictionView>>> {
    require(&caller, Capability::ReadReferenceData)?;
    let reference = state.reference.get();
    let parent = match (params.parent, params.parent_code.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(WebError::invalid(
                "parent 与 parent_code 只能给出一个",
                "give `parent` or `parent_code`, not both",
            ))
        }
        (Some(id), None) => Some(shiyu_domain::JurisdictionId(id)),
        (None, Some(code)) => Some(*reference.by_code.get(code).ok_or_else(WebError::not_found)?),
        (None, None) => None,
    };
    if parent.is_some_and(|id| !reference.jurisdictions.contains_key(&id)) {
        return Err(WebError::not_found());
    }
    let mut children: Vec<_> = reference.jurisdictions.values().filter(|j| j.parent == parent).collect();
    children.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(Json(children.into_iter().map(JurisdictionView::of).collect()))
}

/// Every department and service company.
#[utoipa::path(get, path = "/api/departments", tag = "reference data", responses((status = 200, body = Vec<DepartmentView>)))]
pub async fn departments(
    State(state): State<AppState>,
    caller: Caller,
) -> WebResult<Json<Vec<DepartmentView>>> {
    require(&caller, Capability::ReadReferenceData)?;
    let reference = state.reference.get();
    let mut all: Vec<_> = reference.departments.values().collect();
    all.sort_by_key(|d| d.id);
    Ok(Json(all.into_iter().map(DepartmentView::of).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogView {
    pub categories: Vec<CategoryView>,
    pub matters: Vec<MatterView>,
}

/// The matter catalog (事项清单): categories and matters with their responsibilities and time limits.
#[utoipa::path(get, path = "/api/catalog", tag = "reference data", responses((status = 200, body = CatalogView)))]
pub async fn catalog(State(state): State<AppState>, caller: Caller) -> WebResult<Json<CatalogView>> {
    require(&caller, Capability::ReadReferenceData)?;
    let reference = state.reference.get();
    let mut matters: Vec<_> = reference.matters.values().collect();
    matters.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(Json(CatalogView {
        categories: reference.categories.iter().map(CategoryView::of).collect(),
        matters: matters.into_iter().map(MatterView::of).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorParams {
    /// The `next` cursor of the previous page.
    pub after: Option<i64>,
    /// Page size, 1 to 200 (default 50; more gives 200).
    pub limit: Option<u32>,
}

/// Users, in id order (admins only).
#[utoipa::path(get, path = "/api/users", tag = "users", params(CursorParams),
    responses((status = 200, body = Page<UserView>), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CursorParams>,
    _known: super::KnownParams<(CursorParams,)>,
) -> WebResult<Json<Page<UserView>>> {
    require(&caller, Capability::ListUsers)?;
    let limit = page_size(params.limit)? as usize;
    let after = params.after.unwrap_or(0);
    let users: Vec<_> =
        state.store.users().await?.into_iter().filter(|u| u.id.0 > after).take(limit).collect();
    let next = (users.len() == limit).then(|| users.last().map(|u| u.id.0)).flatten();
    Ok(Json(Page { items: users.iter().map(UserView::of).collect(), next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub display_name: String,
    #[schema(schema_with = crate::views::role_names)]
    pub role: String,
    /// Jurisdiction code, for every role but citizens and department handlers.
    pub jurisdiction: Option<String>,
    /// Department id, for department handlers.
    pub department: Option<i64>,
    pub password: String,
}

/// Creates a user (admins only).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    JsonBody(request): JsonBody<NewUserRequest>,
) -> WebResult<(StatusCode, Json<UserView>)> {
    require(&caller, Capability::ManageUsers)?;
    let role = Role::parse(&request.role).ok_or_else(|| {
        WebError::invalid(
            format!("未知的角色 `{}`", request.role),
            format!("unknown role `{}`", request.role),
        )
    })?;
    let reference = state.reference.get();
    let scope = match (&request.jurisdiction, request.department) {
        (Some(code), None) => Scope::Jurisdiction(*reference.by_code.get(code).ok_or_else(|| {
            WebError::invalid(format!("未知的辖区编码 `{code}`"), format!("unknown jurisdiction `{code}`"))
        })?),
        (None, Some(id)) if reference.departments.contains_key(&DepartmentId(id)) => {
            Scope::Department(DepartmentId(id))
        }
        (None, Some(id)) => {
            return Err(WebError::invalid(format!("未知的部门 {id}"), format!("unknown department {id}")))
        }
        (None, None) => Scope::Unbound,
        (Some(_), Some(_)) => {
            return Err(WebError::invalid(
                "用户只能属于一个辖区或一个部门，不能两者都有",
                "a user belongs to a jurisdiction or a department, not both",
            ))
        }
    };
    let username = request.username.trim().to_string();
    if !shiyu_domain::User::names_are_valid(&username, &request.display_name) {
        return Err(WebError::invalid(shiyu_domain::User::NAME_RULE_ZH, shiyu_domain::User::NAME_RULE));
    }
    let candidate = shiyu_domain::User {
        id: UserId(0),
        username: username.clone(),
        display_name: request.display_name.clone(),
        role,
        scope,
    };
    if !scope_fits(&candidate) {
        let (needs_zh, needs_en) = match role.binding() {
            shiyu_domain::org::Binding::Department => {
                ("部门经办人须属于一个部门", "a department handler belongs to a department")
            }
            shiyu_domain::org::Binding::Jurisdiction => {
                ("该角色在某一辖区工作，须给出辖区编码", "this role works for a jurisdiction: give its code")
            }
            shiyu_domain::org::Binding::Nothing => {
                ("该角色不属于任何辖区或部门", "this role belongs to no jurisdiction or department")
            }
        };
        return Err(WebError::invalid(needs_zh, needs_en));
    }
    if let Scope::Jurisdiction(id) = scope {
        let level = reference.jurisdictions.get(&id).map(|j| j.level);
        if level.is_some_and(|level| !role.may_work_at(level)) {
            return Err(WebError::invalid(Role::WORK_LEVEL_RULE_ZH, Role::WORK_LEVEL_RULE));
        }
    }
    let password_hash = Some(hash_checked(request.password).await?);
    // The store refuses a name taken already, whatever its letter case: two accounts that differ only in case
    // would be taken for one.
    let user = match state
        .store
        .add_user(&NewUser {
            username: username.clone(),
            display_name: request.display_name,
            role,
            scope,
            password_hash,
        })
        .await
    {
        Err(shiyu_store::StoreError::Conflict(_)) => {
            return Err(WebError::refused(
                StatusCode::CONFLICT,
                "USERNAME_TAKEN",
                "用户名已被使用（不区分大小写）",
                "The username is taken (letter case does not count)",
            )
            .with_details(username))
        }
        added => added?,
    };
    if role == Role::GridWorker {
        // Routing names the grid worker who verifies: a new one counts from now on.
        state.reference.reload_catalog_and_people(state.store.as_ref()).await?;
    }
    state
        .store
        .audit(vec![caller.audit(
            state.now(),
            "user_created",
            Some(format!("user:{}", user.id.0)),
            Some(role.as_str().into()),
        )])
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::of(&user))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

/// Sets a user's password (admins only); all their sessions end and any lock is lifted.
#[utoipa::path(post, path = "/api/users/{id}/password", tag = "users", params(("id" = i64, Path)), request_body = PasswordReset,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<i64>,
    JsonBody(request): JsonBody<PasswordReset>,
) -> WebResult<StatusCode> {
    require(&caller, Capability::ManageUsers)?;
    let hash = hash_checked(request.password).await?;
    state.store.set_password(UserId(id), &hash).await?;
    state.store.delete_sessions_of(UserId(id)).await?;
    state
        .store
        .audit(vec![caller.audit(state.now(), "password_reset", Some(format!("user:{id}")), None)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn scope_names() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::views::names_schema(&["read", "write"], "What the token may do."))
        .min_items(Some(1))
        .build()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// What the token is for, e.g. 「12345热线系统」.
    pub name: String,
    /// The user the client acts as; its role and jurisdiction bound what the client may do.
    pub username: String,
    /// `read`, `write` or both.
    #[schema(schema_with = scope_names)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewTokenView {
    pub id: i64,
    /// Shown once: only its hash is stored. Send it as `Authorization: Bearer …`.
    pub token: String,
}

/// Issues an API token for a machine client (admins only).
#[utoipa::path(post, path = "/api/tokens", tag = "users", request_body = NewTokenRequest,
    responses((status = 201, body = NewTokenView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    JsonBody(request): JsonBody<NewTokenRequest>,
) -> WebResult<(StatusCode, Json<NewTokenView>)> {
    require(&caller, Capability::ManageUsers)?;
    if request.scopes.is_empty() || request.scopes.iter().any(|s| s != "read" && s != "write") {
        return Err(WebError::invalid(
            "权限范围 scopes 可为 `read` 和/或 `write`",
            "scopes are `read` and/or `write`",
        ));
    }
    if request.name.trim().is_empty() || request.name.chars().count() > 100 {
        return Err(WebError::invalid(
            "令牌须有名称，最多100个字符",
            "a token needs a name of at most 100 characters",
        ));
    }
    let credentials = state
        .store
        .credentials(&request.username)
        .await?
        .ok_or_else(|| WebError::invalid("未知的用户", "unknown user"))?;
    let token = shiyu_auth::random_token();
    let now = state.now();
    let scopes = request.scopes;
    let id = state
        .store
        .create_api_token(&ApiToken {
            id: 0,
            token_hash: shiyu_auth::token_hash(&token),
            name: request.name,
            user: credentials.user.id,
            scopes: scopes.clone(),
            created_at: now,
            revoked: false,
        })
        .await?;
    // Whom the token acts as, and how far: a token for another user's account is theirs to act as.
    let holder = &credentials.user;
    let detail = format!("for user:{} ({}), scopes {}", holder.id.0, holder.username, scopes.join(","));
    state
        .store
        .audit(vec![caller.audit(now, "token_created", Some(format!("token:{id}")), Some(detail))])
        .await?;
    Ok((StatusCode::CREATED, Json(NewTokenView { id, token })))
}

/// Revokes an API token (admins only).
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<StatusCode> {
    require(&caller, Capability::ManageUsers)?;
    let now = state.now();
    state.store.revoke_api_token(id, now).await?;
    state.store.audit(vec![caller.audit(now, "token_revoked", Some(format!("token:{id}")), None)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An issued API token as admins see it: never the token itself, which only its holder has.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// The user the client acts as.
    pub username: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub revoked: bool,
}

/// Every API token issued, newest first, revoked ones included (admins only): which machine clients may
/// act, as whom, and the id to revoke one by.
#[utoipa::path(get, path = "/api/tokens", tag = "users",
    responses((status = 200, body = Vec<TokenView>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(State(state): State<AppState>, caller: Caller) -> WebResult<Json<Vec<TokenView>>> {
    require(&caller, Capability::ManageUsers)?;
    let tokens = state.store.api_tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|(token, user)| TokenView {
                id: token.id,
                name: token.name,
                username: user.username,
                scopes: token.scopes,
                created_at: token.created_at.0,
                revoked: token.revoked,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub seq: i64,
    pub at: i64,
    pub user: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// The audit log, oldest first, from a cursor (admins only).
#[utoipa::path(get, path = "/api/audit", tag = "users", params(CursorParams),
    responses((status = 200, body = Page<AuditView>), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CursorParams>,
    _known: super::KnownParams<(CursorParams,)>,
) -> WebResult<Json<Page<AuditView>>> {
    require(&caller, Capability::ReadAudit)?;
    let limit = page_size(params.limit)?;
    let records = state.store.audit_log(params.after.unwrap_or(0), limit).await?;
    let next = (records.len() as u32 == limit).then(|| records.last().map(|r| r.seq)).flatten();
    let items = records
        .into_iter()
        .map(|r| AuditView {
            seq: r.seq,
            at: r.entry.at.0,
            user: r.entry.user.map(|u| u.0),
            actor: r.entry.actor,
            action: r.entry.action,
            target: r.entry.target,
            address: r.entry.address,
            detail: r.entry.detail,
        })
        .collect();
    Ok(Json(Page { items, next }))
}
