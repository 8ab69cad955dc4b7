//! Who is calling: a session cookie (browsers, with a CSRF token for writes), a bearer API token (machine
//! clients, with `read`/`write` scopes), or nobody. What they may then do is decided by the domain's
//! permissions, never here.

use crate::errors::{WebError, WebResult};
use crate::views::UserView;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::{Actor, Role, Scope, Timestamp, User};
use shiyu_store::{AuditEntry, Credentials, Session};
use std::collections::HashMap;
use std::net::SocketAddr;
use utoipa::ToSchema;

pub const SESSION_COOKIE: &str = "shiyu_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// The client's network address, for the audit trail.
    pub address: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Principal {
    Anonymous,
    /// Signed in through a session (browser) or an API token (machine client).
    User {
        user: User,
        credential: Credential,
    },
}

/// What a signed-in caller showed: the hash of their session or API token, looked up again by a long-lived
/// request (the event stream) to notice a sign-out or a revoked token.
#[derive(Clone, Debug)]
pub enum Credential {
    Session(String),
    /// The token's hash, and its id for the audit trail.
    ApiToken {
        hash: String,
        id: i64,
    },
    /// Just signed in with a password, within this request.
    Password,
}

impl Caller {
    /// The signed-in user, or 401.
    pub fn user(&self) -> WebResult<&User> {
        match &self.principal {
            Principal::User { user, .. } => Ok(user),
            Principal::Anonymous => Err(WebError::unauthenticated()),
        }
    }

    /// The domain actor for a signed-in user.
    pub fn actor(&self) -> WebResult<Actor> {
        let user = self.user()?;
        Ok(Actor::User { user: user.id, role: user.role, scope: user.scope })
    }

    /// Whether the session or token this caller signed in with still holds, for the same user with the same
    /// role and scope. Anything else — signed out, expired, revoked, the user changed, or the store not
    /// answering — counts as no.
    pub async fn still_signed_in(&self, state: &AppState) -> bool {
        let Principal::User { user, credential } = &self.principal else { return true };
        let same = |now: &User| now.id == user.id && now.role == user.role && now.scope == user.scope;
        match credential {
            Credential::Session(hash) => matches!(
                state.store.find_session(hash).await,
                Ok(Some((session, now))) if session.expires_at > state.now() && same(&now)
            ),
            Credential::ApiToken { hash, .. } => matches!(
                state.store.find_api_token(hash).await,
                Ok(Some((token, now))) if !token.revoked && same(&now)
            ),
            Credential::Password => true,
        }
    }

    pub fn audit(
        &self,
        at: Timestamp,
        action: &str,
        target: Option<String>,
        detail: Option<String>,
    ) -> AuditEntry {
        let (user, actor) = match &self.principal {
            // What a machine client does with a token is told apart from what its user does in person.
            Principal::User { user, credential: Credential::ApiToken { id, .. } } => {
                (Some(user.id), format!("api_token:{id}"))
            }
            Principal::User { user, .. } => (Some(user.id), "user".to_string()),
            Principal::Anonymous => (None, "anonymous".to_string()),
        };
        AuditEntry { at, user, actor, action: action.into(), target, address: self.address.clone(), detail }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        let writes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let now = state.now();
        if let Some(token) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            let token = token.strip_prefix("Bearer ").ok_or_else(WebError::unauthenticated)?;
            let Some((api_token, user)) = state.store.find_api_token(&shiyu_auth::token_hash(token)).await?
            else {
                return Err(WebError::unauthenticated());
            };
            if api_token.revoked {
                return Err(WebError::unauthenticated().with_details("the token was revoked"));
            }
            let scope = if writes { "write" } else { "read" };
            if !api_token.scopes.iter().any(|s| s == scope) {
                return Err(
                    WebError::forbidden().with_details(format!("the token lacks the `{scope}` scope"))
                );
            }
            know_the_place_of(state, &user).await?;
            let credential = Credential::ApiToken { hash: api_token.token_hash, id: api_token.id };
            return Ok(Caller { principal: Principal::User { user, credential }, address });
        }
        let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Ok(Caller { principal: Principal::Anonymous, address });
        };
        let hash = shiyu_auth::token_hash(token);
        let Some((session, user)) = state.store.find_session(&hash).await? else {
            return Ok(Caller { principal: Principal::Anonymous, address });
        };
        if session.expires_at <= now {
            state.store.delete_session(&hash).await?;
            return Ok(Caller { principal: Principal::Anonymous, address });
        }
        if writes {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !shiyu_auth::constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(WebError::refused(
                    StatusCode::FORBIDDEN,
                    "CSRF_TOKEN_INVALID",
                    "请求缺少有效的CSRF令牌",
                    "The request lacks a valid CSRF token (send the X-CSRF-Token header)",
                ));
            }
        }
        know_the_place_of(state, &user).await?;
        Ok(Caller { principal: Principal::User { user, credential: Credential::Session(hash) }, address })
    }
}

/// Reloads the reference data when it does not know the place a user works at: a division imported while the
/// server runs, with users added there. Every jurisdiction check reads the reference data, and a place it
/// does not know must neither widen to the whole city nor shut its users out.
async fn know_the_place_of(state: &AppState, user: &User) -> WebResult<()> {
    if let Scope::Jurisdiction(place) = user.scope {
        if !state.reference.get().jurisdictions.contains_key(&place) {
            state.reference.reload_catalog_and_people(state.store.as_ref()).await?;
        }
    }
    Ok(())
}

/// A caller who is signed in. Handlers that take a body extract it ahead of the body, so that a request
/// without a valid credential is refused (401) before its body is read or judged.
#[derive(Clone, Debug)]
pub struct SignedIn(pub Caller);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.user()?;
        Ok(SignedIn(caller))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    /// Send this back in the `X-CSRF-Token` header of every write made with the session cookie.
    pub csrf_token: String,
    pub expires_at: i64,
}

/// Failed password checks counted in memory: per account and client address, so that whoever fails from one
/// address locks only that address out of the account (a stranger cannot lock an operator out of the command
/// center by guessing wrong on purpose), and, for usernames that do not exist, per name as well, the way the
/// store counts a real account's failures from everywhere, so that the locks do not single out real accounts.
#[derive(Debug, Default)]
pub struct FailedSignIns(std::sync::Mutex<HashMap<String, Run>>);

/// A run of failures under one key: how many, since when, and the lock they brought, if any.
#[derive(Debug, Clone, Copy)]
struct Run {
    failed: i64,
    since: Timestamp,
    locked: Option<Timestamp>,
}

impl FailedSignIns {
    /// Keys remembered at most: a flood of made-up names or addresses empties the memory rather than growing
    /// it.
    const MOST: usize = 10_000;

    /// Counts a failure under `key`, as `Store::count_login_attempt` counts an account's: a run that began at
    /// or before `counting_since` is over. The failures of the run, this one included, or `Err` with the time
    /// a lock lifts.
    fn count(
        &self,
        key: &str,
        now: Timestamp,
        lock_after: i64,
        lock_until: Timestamp,
        counting_since: Timestamp,
    ) -> Result<i64, Timestamp> {
        let mut keys = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= Self::MOST && !keys.contains_key(key) {
            // Runs that are over go first, then runs not yet locked; a lock in force is never dropped, so
            // that a flood of made-up names cannot wipe the locks it is meant to make way for.
            keys.retain(|_, run| run.locked.is_some_and(|until| until > now) || run.since > counting_since);
            if keys.len() >= Self::MOST {
                keys.retain(|_, run| run.locked.is_some_and(|until| until > now));
            }
        }
        let run = keys.entry(key.to_string()).or_insert(Run { failed: 0, since: now, locked: None });
        if let Some(until) = run.locked.filter(|until| *until > now) {
            return Err(until);
        }
        if run.since <= counting_since {
            *run = Run { failed: 0, since: now, locked: None };
        }
        run.failed += 1;
        if run.failed >= lock_after {
            run.locked = Some(lock_until);
        }
        Ok(run.failed)
    }

    /// When the lock on `key` lifts, if it is locked now; counts nothing.
    fn locked(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        let keys = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.get(key).and_then(|run| run.locked).filter(|until| *until > now)
    }

    fn clear(&self, key: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// The key of an account (or a username nobody has) tried from an address. An IPv6 address counts by its
/// /64, the block one machine or household is given: its 2^64 addresses are one caller, not that many.
fn from_address(account: &str, caller: &Caller) -> String {
    let address = caller.address.as_deref().and_then(|a| a.parse::<std::net::IpAddr>().ok());
    match address {
        Some(address) => format!("{account} from {}", crate::ops::caller_block(address)),
        None => format!("{account} from an unknown address"),
    }
}

/// Which lock refused a sign-in.
#[derive(Clone, Copy, Debug)]
enum Lock {
    /// Too many failures from the caller's address: other addresses may still sign in.
    Address,
    /// Too many failures from everywhere: nobody may until it lifts.
    Account,
}

fn account_locked(lock: Lock, until: Option<Timestamp>) -> WebError {
    let error = match lock {
        Lock::Account => WebError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "ACCOUNT_LOCKED",
            "登录失败次数过多，账号已临时锁定",
            "Too many failed sign-ins; the account is locked for a while",
        ),
        Lock::Address => WebError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "ACCOUNT_LOCKED",
            "从此地址登录失败次数过多，该账号暂不能从此地址登录",
            "Too many failed sign-ins from this address; the account cannot be signed into from here for a while",
        ),
    };
    match until {
        Some(until) => error
            .because(format!("锁定至北京时间 {until}"), format!("locked until {until} Beijing time (UTC+8)")),
        None => error,
    }
}

/// The answer to the `failed`-th wrong password in a row: each comes more slowly than the last, up to two
/// seconds.
async fn failed_after(failed: i64) -> WebError {
    slow_down(failed).await;
    login_failed()
}

async fn slow_down(failed: i64) {
    tokio::time::sleep(std::time::Duration::from_millis(200 * failed.clamp(1, 10) as u64)).await;
}

fn login_failed() -> WebError {
    WebError::refused(
        StatusCode::UNAUTHORIZED,
        "LOGIN_FAILED",
        "用户名或密码错误",
        "Wrong username or password",
    )
}

/// Signs in with a username and password; sets the session cookie.
#[utoipa::path(post, path = "/api/session", tag = "sign-in", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::errors::ErrorBody),
              (status = 429, description = "locked after repeated failures", body = crate::errors::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    caller: Caller,
    crate::api::JsonBody(request): crate::api::JsonBody<LoginRequest>,
) -> WebResult<Response> {
    let now = state.now();
    let settings = state.settings.clone();
    let credentials = state.store.credentials(&request.username).await?;
    let lock_until = now.plus_minutes(settings.lockout_minutes);
    // Only failures within one lock's length of each other count toward a lock.
    let counting_since = now.plus_minutes(-settings.lockout_minutes);
    let Some(credentials) = credentials.filter(|c| c.user.role != Role::Citizen || c.password_hash.is_some())
    else {
        // Answered as a real account would be — counted, slowed, locked — and with the same effort, so that
        // neither the answers nor their timing tell which usernames exist.
        // The same steps in the same order as `password_is_right`, the name standing for the account.
        let failed_sign_ins = &state.failed_sign_ins;
        // As typed: sign-in finds an account by its exact name, so another letter case is another name.
        let anywhere = format!("unknown {}", request.username);
        if let Some(until) = failed_sign_ins.locked(&anywhere, now) {
            return Err(account_locked(Lock::Account, Some(until)));
        }
        let failed = failed_sign_ins
            .count(&from_address(&anywhere, &caller), now, settings.lockout_after, lock_until, counting_since)
            .map_err(|until| account_locked(Lock::Address, Some(until)))?;
        failed_sign_ins
            .count(&anywhere, now, settings.account_lockout_after, lock_until, counting_since)
            .map_err(|until| account_locked(Lock::Account, Some(until)))?;
        let _ = verify_in_background(request.password, None).await;
        return Err(failed_after(failed).await);
    };
    let user = credentials.user.clone();
    if !password_is_right(&state, &caller, &credentials, request.password, "login_failed").await? {
        return Err(login_failed());
    }
    let token = shiyu_auth::random_token();
    let session = Session {
        token_hash: shiyu_auth::token_hash(&token),
        user: user.id,
        csrf_token: shiyu_auth::random_token(),
        created_at: now,
        expires_at: now.plus_minutes(settings.session_minutes),
    };
    state.store.create_session(&session).await?;
    let signed_in = Caller {
        principal: Principal::User { user: user.clone(), credential: Credential::Password },
        ..caller
    };
    state.store.audit(vec![signed_in.audit(now, "login", Some(format!("user:{}", user.id.0)), None)]).await?;
    let cookie = session_cookie(&token, settings.session_minutes * 60, settings.secure_cookies);
    let body = LoginResponse {
        user: UserView::of(&user),
        csrf_token: session.csrf_token.clone(),
        expires_at: session.expires_at.0,
    };
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

fn session_cookie(token: &str, max_age_seconds: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("shiyu_session=; Path=/"))
}

async fn verify_in_background(password: String, hash: Option<String>) -> bool {
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => shiyu_auth::verify_password(&password, &hash),
        None => {
            let _ = shiyu_auth::hash_password(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Signs out: the session ends on the server and the cookie is cleared.
#[utoipa::path(delete, path = "/api/session", tag = "sign-in", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> WebResult<Response> {
    if let Principal::User { credential: Credential::Session(hash), .. } = &caller.principal {
        state.store.delete_session(hash).await?;
        state.store.audit(vec![caller.audit(state.now(), "logout", None, None)]).await?;
    }
    let cleared = session_cookie("", 0, state.settings.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cleared)]).into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/me", tag = "sign-in", responses((status = 200, body = UserView), (status = 401, body = crate::errors::ErrorBody)))]
pub async fn me(caller: Caller) -> WebResult<Json<UserView>> {
    Ok(Json(UserView::of(caller.user()?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes one's own password; every session of the user ends, this one included. A wrong current password
/// counts toward the account's lock as a failed sign-in does.
#[utoipa::path(post, path = "/api/me/password", tag = "sign-in", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = crate::errors::ErrorBody),
              (status = 403, description = "the current password is wrong", body = crate::errors::ErrorBody),
              (status = 422, body = crate::errors::ErrorBody),
              (status = 429, description = "locked after repeated failures", body = crate::errors::ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    crate::api::JsonBody(change): crate::api::JsonBody<PasswordChange>,
) -> WebResult<StatusCode> {
    let user = caller.user()?.clone();
    let credentials = state.store.credentials(&user.username).await?.ok_or_else(WebError::unauthenticated)?;
    // Checked like a sign-in: a session left open on someone else's screen must not become a way to guess
    // the password without limit.
    let current = change.current_password;
    if !password_is_right(&state, &caller, &credentials, current, "password_change_failed").await? {
        return Err(WebError::refused(
            StatusCode::FORBIDDEN,
            "CURRENT_PASSWORD_WRONG",
            "当前密码不正确",
            "The current password is wrong",
        ));
    }
    let hash = hash_checked(change.new_password).await?;
    state.store.set_password(user.id, &hash).await?;
    state.store.delete_sessions_of(user.id).await?;
    state
        .store
        .audit(vec![caller.audit(state.now(), "password_changed", Some(format!("user:{}", user.id.0)), None)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks `password` against a real account as every password check must: refused at once while the account
/// is locked, or locked for the caller's address; counted before it is checked, so that guesses sent in
/// parallel each take a place in the count and those beyond the limit are refused unchecked; a wrong one
/// audited as `failure` and answered more slowly each time; a right one clears both counts.
/// `Ok(false)` for a wrong password.
///
/// Two locks: `lockout_after` failures from one address lock that address out of the account (in memory),
/// and `account_lockout_after` from everywhere lock the account itself (in the store, for every node), so
/// that guessing from many addresses meets a limit too, but one stranger cannot lock a user out.
async fn password_is_right(
    state: &AppState,
    caller: &Caller,
    credentials: &Credentials,
    password: String,
    failure: &str,
) -> WebResult<bool> {
    let now = state.now();
    let user = credentials.user.id;
    if let Some(until) = credentials.locked_until.filter(|until| *until > now) {
        return Err(account_locked(Lock::Account, Some(until)));
    }
    let settings = &state.settings;
    let lock_until = now.plus_minutes(settings.lockout_minutes);
    // Only failures within one lock's length of each other count toward a lock.
    let counting_since = now.plus_minutes(-settings.lockout_minutes);
    let here = from_address(&format!("user {}", user.0), caller);
    let failed_here = state
        .failed_sign_ins
        .count(&here, now, settings.lockout_after, lock_until, counting_since)
        .map_err(|until| account_locked(Lock::Address, Some(until)))?;
    let counted = state
        .store
        .count_login_attempt(user, now, settings.account_lockout_after, lock_until, counting_since)
        .await?;
    if counted.is_none() {
        return Err(account_locked(Lock::Account, None));
    }
    if !verify_in_background(password, credentials.password_hash.clone()).await {
        state.store.audit(vec![caller.audit(now, failure, Some(format!("user:{}", user.0)), None)]).await?;
        slow_down(failed_here).await;
        return Ok(false);
    }
    state.store.set_login_state(user, 0, None).await?;
    state.failed_sign_ins.clear(&here);
    Ok(true)
}

/// Checks the password policy and hashes with argon2id, off the async workers.
pub async fn hash_checked(password: String) -> WebResult<String> {
    shiyu_auth::check_password_policy(&password)?;
    tokio::task::spawn_blocking(move || shiyu_auth::hash_password(&password))
        .await
        .map_err(|e| WebError::Store(shiyu_store::StoreError::Other(e.to_string())))?
        .map_err(WebError::from)
}

/// The scope a new user must have for their role.
pub fn scope_fits(user: &User) -> bool {
    user.scope_fits_role() && !matches!((user.role, user.scope), (Role::Citizen, Scope::Jurisdiction(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memory_of_failures_never_drops_a_lock_in_force() {
        let failures = FailedSignIns::default();
        let now = Timestamp(1_000_000_000);
        let (until, since) = (now.plus_minutes(15), now.plus_minutes(-15));
        assert_eq!(failures.count("user 7 from 203.0.113.7", now, 1, until, since), Ok(1));
        for n in 0..FailedSignIns::MOST {
            let _ = failures.count(&format!("unknown x{n} from 198.51.100.1"), now, 5, until, since);
        }
        assert_eq!(
            failures.locked("user 7 from 203.0.113.7", now),
            Some(until),
            "the lock outlives the flood"
        );
        assert!(failures.0.lock().unwrap().len() <= FailedSignIns::MOST + 1);
        // Once the runs are over they make room.
        let later = now.plus_minutes(20);
        let _ = failures.count(
            "unknown y from 198.51.100.2",
            later,
            5,
            later.plus_minutes(15),
            later.plus_minutes(-15),
        );
        assert_eq!(failures.locked("user 7 from 203.0.113.7", later), None);
    }
}
