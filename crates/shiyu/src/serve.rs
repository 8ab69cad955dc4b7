//! `shiyu serve` and the commands around it: `user add`, `new-key`.

use crate::clock;
use crate::config::Config;
use anyhow::{bail, Context};
use shiyu_auth::Sealer;
use shiyu_domain::{Role, Rules, Scope};
use shiyu_store::{CaseService, Clock, NewUser, Store};
use shiyu_web::{AppState, WebSettings};
use std::path::Path;
use std::sync::Arc;

/// Parses `id=BASE64[,id=BASE64…]`.
fn parse_keys(text: &str) -> anyhow::Result<Sealer> {
    let pairs = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| pair.split_once('=').map(|(id, key)| (id.trim().to_string(), key.trim().to_string())))
        .collect::<Option<Vec<_>>>()
        .context("personal-data keys are `id=BASE64[,id=BASE64…]`")?;
    Ok(Sealer::new(&pairs)?)
}

/// The personal-data sealer: configured keys, or for SQLite the key file in the data folder
/// ([`ensure_key`] writes it).
pub fn sealer(config: &Config) -> anyhow::Result<Sealer> {
    if let Some(keys) = &config.security.personal_data_keys {
        return parse_keys(keys.expose());
    }
    if config.storage.database_url.is_some() {
        bail!("set SHIYU_SECURITY__PERSONAL_DATA_KEYS (generate a key with `shiyu new-key`): every node must share it");
    }
    let file = key_file(config);
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    parse_keys(&text).with_context(|| format!("in {}", file.display()))
}

fn key_file(config: &Config) -> std::path::PathBuf {
    config.storage.data_dir.join("keys").join("personal-data.keys")
}

/// Makes sure the sealer can be built. With SQLite and no configured keys, a key is generated into the data
/// folder — but only while it holds no case: once reports are stored, a missing key file means their phone
/// and ID numbers can only be read with the lost key, and a fresh one would hide that until someone needs them.
pub async fn ensure_key(config: &Config, store: &dyn Store) -> anyhow::Result<Sealer> {
    let file = key_file(config);
    if config.security.personal_data_keys.is_none() && config.storage.database_url.is_none() && !file.exists()
    {
        let cases = store.count_cases().await?;
        if cases > 0 {
            bail!(
                "{} is missing, but the database holds {cases} cases whose phone and ID numbers were sealed \
                 with it. Put the key file back (it belongs with every copy of the data folder), or give the \
                 keys in SHIYU_SECURITY__PERSONAL_DATA_KEYS. A new key would leave that data unreadable, so \
                 none is made. / 个人信息密钥文件缺失，而数据库中已有{cases}件事件的加密个人信息：请恢复该密钥文件。",
                file.display()
            );
        }
        write_private(&file, &format!("k1={}\n", Sealer::generate_key()))?;
    }
    sealer(config)
}

/// Writes a file only its owner may read (keys, demo passwords).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

pub fn web_settings(config: &Config) -> WebSettings {
    WebSettings {
        secure_cookies: config.security.secure_cookies,
        session_minutes: config.security.session_minutes.max(1),
        public_requests_per_minute: config.security.public_requests_per_minute,
        lockout_after: config.security.lockout_after.max(1),
        account_lockout_after: config.security.account_lockout_after.max(1),
        lockout_minutes: config.security.lockout_minutes.max(1),
        // An empty token would let every request through while looking set: it counts as none.
        metrics_token: config
            .security
            .metrics_token
            .as_ref()
            .map(|t| t.expose().trim().to_string())
            .filter(|t| !t.is_empty()),
        map_tolerance_m: config.server.map_tolerance_m.max(0.0),
        ..WebSettings::default()
    }
}

/// The deadline engine and the notifier, running beside the API until dropped.
#[derive(Debug)]
pub struct Background(Vec<tokio::task::AbortHandle>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts the deadline engine (rebuilt from the store's alarm index), the notifier (SMS to
/// `DATA_DIR/sms.log`) and the webhook deliverer, after putting the escalation rules and calendar edited over
/// the API into effect.
pub async fn start_background(
    service: &CaseService,
    config: &Config,
    sealer: Arc<Sealer>,
    clock: Clock,
) -> anyhow::Result<Background> {
    let store = service.store().clone();
    service.set_rules(shiyu_sla::settings::stored_rules(store.as_ref(), (*service.rules()).clone()).await?);
    let deadlines = shiyu_sla::Deadlines::start(service.clone(), clock.clone()).await?;
    tracing::info!(armed = deadlines.armed().await, "deadline engine started");
    std::fs::create_dir_all(&config.storage.data_dir)?;
    let sms = Arc::new(shiyu_sla::LogSms::new(config.storage.data_dir.join("sms.log")));
    let notifier = shiyu_sla::Notifier::new(store.clone(), sms, clock.clone());
    let deliverer = shiyu_sla::Deliverer::new(store, sealer, clock);
    let poll = std::time::Duration::from_millis(200);
    Ok(Background(vec![
        tokio::spawn(deadlines.run(poll)).abort_handle(),
        tokio::spawn(notifier.run(poll)).abort_handle(),
        tokio::spawn(deliverer.run(std::time::Duration::from_millis(500))).abort_handle(),
    ]))
}

/// Serves the API until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn serve(store: Arc<dyn Store>, rules: Rules, config: &Config, listen: &str) -> anyhow::Result<()> {
    let sealer = ensure_key(config, store.as_ref()).await?;
    let service = CaseService::new(store, Arc::new(rules));
    let clock = clock::configured()?;
    let state = AppState::new(service.clone(), sealer, clock.clone(), web_settings(config)).await?;
    let _background = start_background(&service, config, state.sealer.clone(), clock).await?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    say!("shiyu serving on http://{address}  (API description: http://{address}/api/openapi.json)");
    shiyu_web::serve(listener, state, shutdown_signal()).await?;
    say!("shiyu stopped");
    Ok(())
}

pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// `shiyu user add`: creates a user, the first admin included; the password comes on standard input.
pub async fn add_user(
    store: Arc<dyn Store>,
    username: &str,
    display_name: Option<String>,
    role: &str,
    jurisdiction: Option<String>,
    department: Option<i64>,
    password: String,
) -> anyhow::Result<()> {
    let role = Role::parse(role).with_context(|| {
        let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role `{role}`; one of {}", roles.join(", "))
    })?;
    let scope = match (jurisdiction, department) {
        (Some(code), None) => {
            let found = store.jurisdictions().await?.into_iter().find(|j| j.code == code);
            let found = found
                .with_context(|| format!("no jurisdiction with code {code} / 没有编码为 {code} 的辖区"))?;
            if !role.may_work_at(found.level) {
                bail!("{} / {}", Role::WORK_LEVEL_RULE, Role::WORK_LEVEL_RULE_ZH);
            }
            Scope::Jurisdiction(found.id)
        }
        (None, Some(id)) => {
            let found = store.departments().await?.into_iter().find(|d| d.id.0 == id);
            Scope::Department(found.with_context(|| format!("no department {id}"))?.id)
        }
        (None, None) => Scope::Unbound,
        (Some(_), Some(_)) => bail!("give --jurisdiction or --department, not both"),
    };
    let display_name = display_name.unwrap_or_else(|| username.into());
    if !shiyu_domain::User::names_are_valid(username, &display_name) {
        bail!("{} / {}", shiyu_domain::User::NAME_RULE, shiyu_domain::User::NAME_RULE_ZH);
    }
    let candidate = shiyu_domain::User {
        id: shiyu_domain::UserId(0),
        username: username.into(),
        display_name: display_name.clone(),
        role,
        scope,
    };
    if !candidate.scope_fits_role() {
        bail!(
            "the role {} takes {}",
            role.as_str(),
            match role.binding() {
                shiyu_domain::org::Binding::Department => "--department",
                shiyu_domain::org::Binding::Jurisdiction => "--jurisdiction",
                shiyu_domain::org::Binding::Nothing => "neither --jurisdiction nor --department",
            }
        );
    }
    shiyu_auth::check_password_policy(&password)
        .map_err(|e| anyhow::anyhow!("{} / {}", e.message_en(), e.message_zh()))?;
    let password_hash = Some(shiyu_auth::hash_password(&password)?);
    let user = match store
        .add_user(&NewUser { username: username.into(), display_name, role, scope, password_hash })
        .await
    {
        Err(shiyu_store::StoreError::Conflict(_)) => {
            bail!("the username `{username}` is taken (letter case does not count) / 用户名已被使用")
        }
        added => added?,
    };
    // Users made on the server's own command line are audited like those made over the API.
    store
        .audit(vec![shiyu_store::AuditEntry {
            at: clock::now(),
            user: None,
            actor: "command_line".into(),
            action: "user_created".into(),
            target: Some(format!("user:{}", user.id.0)),
            address: None,
            detail: Some(format!("{} (shiyu user add)", role.as_str())),
        }])
        .await?;
    say!("user {} ({}) created with id {}", user.username, role.as_str(), user.id.0);
    Ok(())
}
