//! The JSON shapes of the API, and how domain values become them (with personal data masked).

use crate::reference::Reference;
use serde::{Deserialize, Serialize};
use shiyu_auth::Sealer;
use shiyu_domain::permissions::sees_handling;
use shiyu_domain::{
    Actor, AttachmentRef, CaseId, CaseState, Category, Change, Department, DepartmentId, Event, Jurisdiction,
    JurisdictionId, Matter, Role, Rules, Timestamp, User,
};
use shiyu_store::StoredEvent;
use utoipa::ToSchema;

/// The snake_case name serde gives a unit-like domain enum value.
pub fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The OpenAPI schema of a text field that takes the names of `values` (a domain enum's variants).
pub fn names_schema<T: Serialize>(values: &[T], description: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().map(name_of)))
        .description(Some(description))
        .build()
}

pub fn channel_names() -> utoipa::openapi::schema::Object {
    names_schema(&shiyu_domain::Channel::ALL, "Where the report came from.")
}

/// Optional where it is used: null is allowed too.
pub fn priority_names() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = names_schema(
        &shiyu_domain::Priority::ALL,
        "How urgent the case is; left out or null: the matter's own.",
    );
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(names) = schema.enum_values.as_mut() {
        names.push(serde_json::Value::Null);
    }
    schema
}

pub fn status_names() -> utoipa::openapi::schema::Object {
    names_schema(&shiyu_domain::Status::ALL, "A state of the closed loop.")
}

pub fn role_names() -> utoipa::openapi::schema::Object {
    names_schema(&shiyu_domain::Role::ALL, "What the user does on the platform.")
}

/// Parses a snake_case name back into a domain enum.
pub fn parse_name<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// citizen, hotline_agent, grid_worker, operator, department_handler, mediator, leader or admin
    pub role: String,
    pub jurisdiction: Option<i64>,
    pub department: Option<i64>,
}

impl UserView {
    pub fn of(user: &User) -> UserView {
        let (jurisdiction, department) = match user.scope {
            shiyu_domain::Scope::Jurisdiction(j) => (Some(j.0), None),
            shiyu_domain::Scope::Department(d) => (None, Some(d.0)),
            shiyu_domain::Scope::Unbound => (None, None),
        };
        UserView {
            id: user.id.0,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role.as_str().into(),
            jurisdiction,
            department,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationView {
    /// Longitude, degrees (CGCS2000 / WGS84)
    pub lon: f64,
    /// Latitude, degrees
    pub lat: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentView {
    /// SHA-256 of the content, as returned by `POST /api/attachments`.
    pub sha256: String,
    pub name: String,
    /// In requests only: the receipt an upload without sign-in was given (see `POST /api/public/attachments`).
    /// Never written out: not in answers, and not in an Idempotency-Key's fingerprint, so that a retry that
    /// uploaded the file again (and got a new receipt) is still the same report.
    #[serde(default, skip_serializing_if = "never_written")]
    pub receipt: Option<String>,
}

/// `skip_serializing_if` rather than `skip_serializing`, which would also drop the field from the OpenAPI
/// document.
fn never_written<T>(_: &T) -> bool {
    true
}

impl AttachmentView {
    fn of(a: &AttachmentRef) -> AttachmentView {
        AttachmentView { sha256: a.sha256.clone(), name: a.name.clone(), receipt: None }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlineView {
    pub stage: String,
    /// The stage in Chinese (受理, 立案, 派遣, 签收, 处置, 核查, 结案).
    pub stage_label: String,
    pub basis: String,
    pub started: i64,
    pub yellow_at: i64,
    pub due: i64,
    /// The due time in Beijing time, `2026-12-07 10:20`.
    pub due_label: String,
    /// Clock minutes until due at the time of asking (nights and holidays included, whatever the basis);
    /// negative once overdue.
    pub minutes_left: i64,
}

/// A stopped clock (挂起): since when, which stage, and the time it will have again when resumed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspensionView {
    pub since: i64,
    /// Beijing time, `2026-12-07 10:20`.
    pub since_label: String,
    pub stage: String,
    pub stage_label: String,
    /// `working` or `natural`: what `remaining_minutes` counts.
    pub basis: String,
    /// Minutes of the basis (working minutes on a working-time limit, unlike a deadline's clock-minute
    /// `minutes_left`) left on the stage when it stopped; negative when it was already overdue, and the
    /// resumed deadline is that late again.
    pub remaining_minutes: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReporterView {
    pub anonymous: bool,
    /// The phone number, masked (138****5678). The unmasked number is served, and audited, by
    /// `GET /api/cases/{id}/personal-data` to the roles that need it.
    pub phone: Option<String>,
    pub id_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupervisionView {
    pub issued_at: i64,
    pub due: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RatingView {
    pub score: u8,
    pub comment: Option<String>,
    pub at: i64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CountsView {
    pub returns: u32,
    pub reworks: u32,
    pub extensions: u32,
    pub escalations: u32,
    pub supervisions: u32,
    pub reopenings: u32,
    pub instructions: u32,
}

/// A case as staff see it. Times are milliseconds since 1970-01-01 UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: i64,
    /// Send it back as `expected_version` to act only if nobody changed the case meanwhile.
    pub version: u64,
    pub status: String,
    pub status_label: String,
    pub channel: String,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<LocationView>,
    /// The jurisdictions the case happened in, city first.
    pub jurisdictions: Vec<i64>,
    /// Their names below the city, joined as one says them (崇川区和平桥街道桃坞路社区第一网格).
    pub place_name: String,
    /// The command center responsible for it.
    pub owner: i64,
    pub owner_name: Option<String>,
    pub matter: Option<String>,
    pub matter_name: Option<String>,
    pub category: Option<String>,
    pub category_name: Option<String>,
    pub priority: String,
    pub lead_department: Option<i64>,
    pub lead_department_name: Option<String>,
    pub assisting_departments: Vec<i64>,
    pub assisting_department_names: Vec<String>,
    pub accepted_by: Vec<i64>,
    pub deadline: Option<DeadlineView>,
    /// While the case is suspended, instead of `deadline`.
    pub suspension: Option<SuspensionView>,
    /// green, yellow (临期), red (超期), paused (挂起) or off
    pub light: String,
    pub reporter: ReporterView,
    pub pending_extension_minutes: Option<u32>,
    /// When the stage would be due if the pending extension were approved (ms), and the same in Beijing
    /// time: what the deciding center approves.
    pub pending_extension_due: Option<i64>,
    pub pending_extension_due_label: Option<String>,
    pub supervisions: Vec<SupervisionView>,
    pub rating: Option<RatingView>,
    pub merged_into: Option<i64>,
    pub counts: CountsView,
    pub received_at: i64,
    pub updated_at: i64,
    pub ended_at: Option<i64>,
}

/// Names of nested places joined as one says them: a grid named after its community (桃坞路社区第一网格) adds
/// only its own part after the community's name.
fn chain_name(names: impl Iterator<Item = String>) -> String {
    let mut spoken = String::new();
    let mut previous = String::new();
    for name in names {
        spoken
            .push_str(name.strip_prefix(previous.as_str()).filter(|_| !previous.is_empty()).unwrap_or(&name));
        previous = name;
    }
    spoken
}

/// Masks a sealed value for display; a value that cannot be opened shows as stars.
pub fn masked(sealer: &Sealer, sealed: Option<&String>, mask: fn(&str) -> String) -> Option<String> {
    sealed.map(|s| sealer.open(s).map(|plain| mask(&plain)).unwrap_or_else(|_| "****".into()))
}

impl CaseView {
    /// The case as `actor` may see it: staff see everything; a citizen sees their own report with the
    /// handling inside left out (`shiyu_domain::sees_handling`).
    pub fn of(
        id: CaseId,
        case: &CaseState,
        now: Timestamp,
        sealer: &Sealer,
        actor: &Actor,
        reference: &Reference,
        rules: &Rules,
    ) -> CaseView {
        let view = CaseView::whole(id, case, now, sealer, reference, rules);
        if sees_handling(actor) {
            view
        } else {
            view.without_handling()
        }
    }

    /// What a reporter sees: no departments, deadline, supervision, counts or merge target, and the light
    /// `off`.
    fn without_handling(self) -> CaseView {
        CaseView {
            lead_department: None,
            lead_department_name: None,
            assisting_departments: Vec::new(),
            assisting_department_names: Vec::new(),
            accepted_by: Vec::new(),
            deadline: None,
            suspension: None,
            light: "off".into(),
            pending_extension_minutes: None,
            pending_extension_due: None,
            pending_extension_due_label: None,
            supervisions: Vec::new(),
            merged_into: None,
            counts: CountsView::default(),
            ..self
        }
    }

    fn whole(
        id: CaseId,
        case: &CaseState,
        now: Timestamp,
        sealer: &Sealer,
        reference: &Reference,
        rules: &Rules,
    ) -> CaseView {
        let reporter = &case.reporter;
        let extended = shiyu_domain::decide::extended_deadline(case, rules).ok();
        let place = |id: &JurisdictionId| reference.jurisdictions.get(id).map(|j| j.name.clone());
        let department = |id: &DepartmentId| reference.departments.get(id).map(|d| d.name.clone());
        let matter = case.matter.as_ref();
        CaseView {
            id: id.0,
            version: case.version,
            status: case.status.as_str().into(),
            status_label: case.status.label_zh().into(),
            channel: name_of(&case.channel),
            description: case.description.clone(),
            address: case.address.clone(),
            location: case.location.map(|p| LocationView { lon: p.lon, lat: p.lat }),
            jurisdictions: case.path.iter().map(|j| j.0).collect(),
            place_name: chain_name(case.path.iter().skip(1).filter_map(place)),
            owner: case.owner.0,
            owner_name: place(&case.owner),
            matter: matter.map(|m| m.code.clone()),
            matter_name: matter.and_then(|m| reference.matters.get(&m.code)).map(|m| m.name.clone()),
            category: matter.map(|m| m.category.clone()),
            category_name: matter
                .and_then(|m| reference.categories.iter().find(|c| c.code == m.category))
                .map(|c| c.name.clone()),
            priority: name_of(&case.priority),
            lead_department: case.lead.map(|d| d.0),
            lead_department_name: case.lead.as_ref().and_then(department),
            assisting_departments: case.assisting.iter().map(|d| d.0).collect(),
            assisting_department_names: case.assisting.iter().filter_map(department).collect(),
            accepted_by: case.accepted.iter().map(|d| d.0).collect(),
            deadline: case.deadline.map(|d| DeadlineView {
                stage: d.stage.as_str().into(),
                stage_label: shiyu_domain::sla::stage_label(d.stage).into(),
                basis: name_of(&d.basis),
                started: d.started.0,
                yellow_at: d.yellow_at.0,
                due: d.due.0,
                due_label: d.due.to_string(),
                minutes_left: (d.due.0 - now.0).div_euclid(60_000),
            }),
            suspension: case.suspension.map(|stopped| SuspensionView {
                since: stopped.since.0,
                since_label: stopped.since.to_string(),
                stage: stopped.stage.as_str().into(),
                stage_label: shiyu_domain::sla::stage_label(stopped.stage).into(),
                basis: name_of(&stopped.basis),
                remaining_minutes: stopped.remaining_minutes,
            }),
            light: name_of(&case.light(now)),
            reporter: ReporterView {
                anonymous: reporter.anonymous,
                phone: masked(sealer, reporter.contact_sealed.as_ref(), shiyu_auth::mask_phone),
                id_number: masked(sealer, reporter.id_number_sealed.as_ref(), shiyu_auth::mask_id_number),
            },
            pending_extension_minutes: case.pending_extension.map(|e| e.minutes),
            pending_extension_due: extended.map(|d| d.due.0),
            pending_extension_due_label: extended.map(|d| d.due.to_string()),
            supervisions: case
                .supervisions
                .iter()
                .map(|s| SupervisionView { issued_at: s.issued_at.0, due: s.due.0 })
                .collect(),
            rating: case.rating.as_ref().map(|r| RatingView {
                score: r.score,
                comment: r.comment.clone(),
                at: r.at.0,
            }),
            merged_into: case.merged_into.map(|c| c.0),
            counts: CountsView {
                returns: case.counts.returns,
                reworks: case.counts.reworks,
                extensions: case.counts.extensions,
                escalations: case.counts.escalations,
                supervisions: case.counts.supervisions,
                reopenings: case.counts.reopenings,
                instructions: case.counts.instructions,
            },
            received_at: case.received_at.0,
            updated_at: case.updated_at.0,
            ended_at: case.ended_at.map(|t| t.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    /// user, reporter or system
    pub kind: String,
    pub user: Option<i64>,
    pub role: Option<String>,
}

/// One step of a case's history, as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub version: u64,
    pub at: i64,
    pub kind: String,
    pub label: String,
    pub actor: ActorView,
    pub note: Option<String>,
    /// 答复: what the reporter was told at this step (public: the reporter sees it too).
    pub reply: Option<String>,
    pub attachments: Vec<AttachmentView>,
    /// The event's own data (departments, deadlines, …), as stored.
    pub data: serde_json::Value,
}

impl EventView {
    /// The step as `actor` may see it; `None` for the steps a reporter does not see. A reporter sees the
    /// public steps only, never who on the staff acted, their notes, the event's data or the staff's files —
    /// only their own.
    pub fn seen_by(stored: &StoredEvent, actor: &Actor) -> Option<EventView> {
        let view = EventView::of(stored);
        if sees_handling(actor) {
            return Some(view);
        }
        let step = public_step(&stored.event)?;
        let own = matches!(stored.event.actor, Actor::Reporter)
            || matches!((stored.event.actor, actor), (Actor::User { user: by, .. }, Actor::User { user: me, .. }) if by == *me);
        Some(EventView {
            label: step.label,
            actor: ActorView { kind: view.actor.kind, user: None, role: None },
            note: if own { view.note } else { None },
            attachments: if own { view.attachments } else { Vec::new() },
            data: serde_json::Value::Object(serde_json::Map::new()),
            ..view
        })
    }

    fn of(stored: &StoredEvent) -> EventView {
        let event = &stored.event;
        let actor = match event.actor {
            // A citizen's own account is theirs to know: staff see that the reporter acted, not which
            // account, so that anonymous reports of one citizen cannot be linked by it.
            Actor::User { role: Role::Citizen, .. } => {
                ActorView { kind: "reporter".into(), user: None, role: Some(Role::Citizen.as_str().into()) }
            }
            Actor::User { user, role, .. } => {
                ActorView { kind: "user".into(), user: Some(user.0), role: Some(role.as_str().into()) }
            }
            Actor::Reporter => ActorView { kind: "reporter".into(), user: None, role: None },
            Actor::System => ActorView { kind: "system".into(), user: None, role: None },
        };
        let mut data = serde_json::to_value(&event.change).unwrap_or_default();
        if let Some(object) = data.as_object_mut() {
            object.remove("type");
            // Sealed personal data never leaves through the history either.
            if let Some(reporter) = object.get_mut("reporter").and_then(|r| r.as_object_mut()) {
                reporter.remove("contact_sealed");
                reporter.remove("id_number_sealed");
                reporter.remove("tracking_code");
                if reporter.get("anonymous") == Some(&serde_json::Value::Bool(true)) {
                    reporter.remove("user");
                }
            }
        }
        EventView {
            seq: stored.seq,
            version: stored.version,
            at: event.at.0,
            kind: event.change.kind().into(),
            label: event.change.label_zh().into(),
            actor,
            note: event.note.clone(),
            reply: event.reply.clone(),
            attachments: event.attachments.iter().map(AttachmentView::of).collect(),
            data,
        }
    }
}

/// A step of the public progress: what happened and when, never who or the staff's reasons; where the case
/// ended, the answer written for the reporter.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStep {
    pub at: i64,
    pub label: String,
    /// 答复: what the staff answered the reporter when rejecting, closing or voiding the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

/// What a reporter sees when following a case by its tracking code.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackView {
    pub tracking_code: String,
    pub status: String,
    pub status_label: String,
    pub received_at: i64,
    pub updated_at: i64,
    pub steps: Vec<PublicStep>,
    pub rating: Option<u8>,
    /// Closed and not yet rated.
    pub can_rate: bool,
    /// For a report merged with another on the same problem: how that case, which now carries both, is
    /// going (its status and public steps), so that the reporter learns the outcome too.
    pub handled_with: Option<MergedProgress>,
}

/// The public progress of the case a report was merged into.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergedProgress {
    pub status: String,
    pub status_label: String,
    pub updated_at: i64,
    pub steps: Vec<PublicStep>,
}

/// The steps a reporter may see: internal ones (acceptance by each department, extensions, supervision,
/// instructions) stay inside.
pub fn public_step(event: &Event) -> Option<PublicStep> {
    let label = match &event.change {
        Change::Received { .. } => "已受理",
        Change::Registered { .. } => "已立案",
        Change::Rejected => "不予立案",
        Change::Dispatched { .. } => "已转交职能部门办理",
        Change::ReportedBack { .. } | Change::ResolvedOnSpot { .. } => "已处置，待核查",
        Change::Verified { .. } => "已核查",
        Change::VerificationFailed { .. } => "核查未通过，重新处置",
        Change::Closed => "已办结",
        Change::Rated { .. } => "已评价",
        Change::Merged { .. } => "与相同问题合并办理",
        Change::Voided => "已作废",
        Change::Reopened { .. } => "重新办理",
        Change::Escalated { .. } => "已提交上级处理",
        _ => return None,
    };
    Some(PublicStep { at: event.at.0, label: label.into(), reply: event.reply.clone() })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JurisdictionView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent: Option<i64>,
}

impl JurisdictionView {
    pub fn of(j: &Jurisdiction) -> JurisdictionView {
        JurisdictionView {
            id: j.id.0,
            code: j.code.clone(),
            name: j.name.clone(),
            level: j.level.as_str().into(),
            parent: j.parent.map(|p| p.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub jurisdiction: i64,
}

impl DepartmentView {
    pub fn of(d: &Department) -> DepartmentView {
        DepartmentView {
            id: d.id.0,
            code: d.code.clone(),
            name: d.name.clone(),
            kind: d.kind.clone(),
            jurisdiction: d.jurisdiction.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub code: String,
    pub name: String,
}

impl CategoryView {
    pub fn of(c: &Category) -> CategoryView {
        CategoryView { code: c.code.clone(), name: c.name.clone() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatterView {
    pub code: String,
    pub name: String,
    pub category: String,
    pub default_priority: String,
    /// Responsible department kinds per level, and the time limit of each stage, as stored.
    pub responsibilities: serde_json::Value,
    pub limits: serde_json::Value,
    /// Reports of this matter within this many metres …
    pub duplicate_radius_m: u32,
    /// … and hours of each other are compared as possible duplicates.
    pub duplicate_window_hours: u32,
}

impl MatterView {
    pub fn of(m: &Matter) -> MatterView {
        MatterView {
            code: m.code.clone(),
            name: m.name.clone(),
            category: m.category.clone(),
            default_priority: name_of(&m.default_priority),
            responsibilities: serde_json::to_value(&m.responsibilities).unwrap_or_default(),
            limits: serde_json::to_value(m.limits).unwrap_or_default(),
            duplicate_radius_m: m.duplicates.radius_m,
            duplicate_window_hours: m.duplicates.window_hours,
        }
    }
}

/// A page of a list: `next` is the cursor for the following page, absent on the last one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// A page of cases. Newest first, the next page is `before=<next>`; in a work list (`order=due`) it is
/// `after=<next>&after_due=<next_due>`, the last case's id and due time.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<i64>,
}
