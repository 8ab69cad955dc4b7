//! Carries simulated reports through the closed loop, one command at a time through the case service, so
//! every history is one the domain accepted.

use crate::city::City;
use crate::rng::Rng;
use shiyu_domain::{
    Action, Actor, Basis, CaseId, Channel, Command, JurisdictionId, Level, Matter, NewCase, Reporter,
    Timestamp, User,
};
use shiyu_store::{CaseService, ServiceError};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug)]
pub struct WalkOptions {
    pub cases: usize,
    pub seed: u64,
    /// Reports arrive over the `days` before `until`; no step happens after `until`.
    pub until: Timestamp,
    pub days: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkSummary {
    pub cases: usize,
    pub commands: usize,
}

const SPOTS: &[&str] = &[
    "小区东门",
    "菜市场旁",
    "学校门口",
    "公交站台附近",
    "沿街商铺前",
    "老旧小区内",
    "河边步道",
    "工地围挡外",
];

/// What a reporter says about each matter.
fn complaint(matter: &str) -> &'static str {
    match matter {
        "street_vending" => "有流动摊贩占道经营，影响行人通行",
        "exposed_garbage" => "垃圾堆放多日无人清运，气味很大",
        "illegal_advertising" => "墙上和电线杆上贴满小广告",
        "illegal_building" => "有住户在楼顶违章搭建彩钢棚",
        "construction_noise" => "工地夜间施工到凌晨，噪音严重影响休息",
        "road_damage" => "路面塌陷出现大坑，电动车经过很危险",
        "noise_nuisance" => "商铺音响声音过大，长期扰民",
        "exhaust_pollution" => "烧烤店油烟直排，居民家里都是烟味",
        "river_pollution" => "河面漂浮大量垃圾，水体发黑发臭",
        "gas_leak" => "闻到很浓的煤气味，怀疑燃气泄漏",
        "power_outage" => "整栋楼突然停电，已经两个小时没有恢复",
        "water_outage" => "家里停水一天了，没有接到任何通知",
        "missing_manhole_cover" => "人行道上井盖缺失，晚上看不清容易掉下去",
        "blocked_fire_lane" => "消防通道被私家车长期占用",
        "unsafe_building" => "老楼外墙开裂，墙皮不断掉落",
        "neighbour_dispute" => "楼上楼下因漏水问题发生纠纷，协商不成",
        "wage_arrears" => "十几名工人被拖欠工资三个月，老板联系不上",
        "property_management_dispute" => "物业收费不公示，业主和物业矛盾激化",
        "elderly_care" => "独居老人生活困难，希望社区上门关心",
        "medical_service" => "社区卫生服务站经常不开门，看病不方便",
        "food_safety" => "小餐馆后厨卫生条件很差，有老鼠出没",
        "price_fraud" => "商家标价和结账价格不一致",
        _ => "存在问题，希望有关部门尽快处理",
    }
}

/// How people name a community: 富新社区 rather than 富新社区居委会, 三星村 rather than 三星村委会.
fn spoken_name(official: &str) -> String {
    if let Some(stem) = official.strip_suffix("村委会") {
        format!("{stem}村")
    } else {
        official.strip_suffix("居委会").unwrap_or(official).to_string()
    }
}

fn note(text: &str) -> Option<String> {
    Some(text.to_string())
}

struct Walker<'a> {
    service: &'a CaseService,
    city: &'a City,
    rng: Rng,
    communities_by_county: Vec<(JurisdictionId, Vec<JurisdictionId>)>,
    users: HashMap<&'a str, &'a User>,
    commands: usize,
    until: Timestamp,
}

/// Simulates `options.cases` reports and carries each as far through the loop as time allows.
pub async fn walk(
    service: &CaseService,
    city: &City,
    options: WalkOptions,
) -> Result<WalkSummary, ServiceError> {
    let mut by_county: HashMap<JurisdictionId, Vec<JurisdictionId>> = HashMap::new();
    for community in city.at_level(Level::Community) {
        if let Some(county) = city.path_to(community.id).get(1) {
            by_county.entry(*county).or_default().push(community.id);
        }
    }
    let mut communities_by_county: Vec<_> = by_county.into_iter().collect();
    communities_by_county.sort_by_key(|(county, _)| *county);
    let mut walker = Walker {
        service,
        city,
        rng: Rng::new(options.seed),
        communities_by_county,
        users: city.users.iter().map(|u| (u.username.as_str(), u)).collect(),
        commands: 0,
        until: options.until,
    };
    let mut previous = None;
    for _ in 0..options.cases {
        let offset = walker.rng.below(options.days.max(1) as usize * 24 * 60) as i64;
        let start = options.until.plus_minutes(-offset);
        previous = Some(walker.case(start, previous).await?);
    }
    Ok(WalkSummary { cases: options.cases, commands: walker.commands })
}

impl Walker<'_> {
    fn actor(&self, username: &str) -> Result<Actor, ServiceError> {
        let user = self.users.get(username).ok_or_else(|| {
            ServiceError::Store(shiyu_store::StoreError::NotFound(format!("demo user {username}")))
        })?;
        Ok(Actor::User { user: user.id, role: user.role, scope: user.scope })
    }

    /// One case from report to wherever it stands at `until`. Returns its id.
    async fn case(
        &mut self,
        start: Timestamp,
        previous: Option<(CaseId, String)>,
    ) -> Result<(CaseId, String), ServiceError> {
        // 崇川区, the old town, reports three times as often as any other district.
        let weights: Vec<usize> = self
            .communities_by_county
            .iter()
            .map(
                |(county, _)| {
                    if self.city.jurisdiction(*county).is_some_and(|c| c.code == "320613") {
                        3
                    } else {
                        1
                    }
                },
            )
            .collect();
        let mut draw = self.rng.below(weights.iter().sum());
        let mut index = 0;
        while draw >= weights[index] {
            draw -= weights[index];
            index += 1;
        }
        let (county_id, communities) = &self.communities_by_county[index];
        let county_id = *county_id;
        let community_id = *self.rng.pick(communities).unwrap_or(&county_id);
        let community = self.city.jurisdiction(community_id).cloned();
        let county = self.city.jurisdiction(county_id).cloned();
        let (Some(community), Some(county)) = (community, county) else {
            return Err(ServiceError::Store(shiyu_store::StoreError::NotFound("demo place".into())));
        };
        let matter: Matter =
            self.rng.pick(&self.city.matters).cloned().ok_or_else(|| {
                ServiceError::Store(shiyu_store::StoreError::NotFound("demo catalog".into()))
            })?;
        let spot = self.rng.pick(SPOTS).copied().unwrap_or("附近");
        let place = spoken_name(&community.name);
        let description = format!("{place}{spot}{}", complaint(&matter.code));
        let channel_draw = self.rng.below(100);
        let (channel, reporter_name) = match channel_draw {
            0..=44 => (Channel::Hotline, "hotline1".to_string()),
            45..=69 => (Channel::App, format!("citizen{}", 1 + self.rng.below(20))),
            70..=79 => (Channel::MiniProgram, format!("citizen{}", 1 + self.rng.below(20))),
            80..=94 => (Channel::GridPatrol, format!("gw{}", community.code)),
            _ => (Channel::Sensor, String::new()),
        };
        let reporting = if channel == Channel::Sensor { Actor::System } else { self.actor(&reporter_name)? };
        let reporter = Reporter {
            user: reporting.user_id().filter(|_| matches!(channel, Channel::App | Channel::MiniProgram)),
            anonymous: channel == Channel::Hotline && self.rng.chance(30),
            ..Reporter::default()
        };
        let receive = Command::new(Action::Receive(NewCase {
            channel,
            description,
            address: Some(format!("{}{place}{spot}", county.name)),
            location: None,
            path: self.city.path_to(community_id),
            owner: county_id,
            reporter,
            matter: (channel == Channel::GridPatrol).then(|| matter.clone()),
            priority: None,
        }));
        let key = Some(format!("demo-{}-{}", start.0, self.rng.next_u64()));
        let id = self.service.receive(key, &receive, &reporting, start).await?.id;
        self.commands += 1;
        let mut flow = Flow { walker: self, id, at: start };
        flow.run(&matter, &county.code, &community.code, previous).await?;
        Ok((id, matter.code))
    }
}

struct Flow<'w, 'a> {
    walker: &'w mut Walker<'a>,
    id: CaseId,
    at: Timestamp,
}

impl Flow<'_, '_> {
    /// Takes the next step some working minutes later (staff work office hours); `false` when that moment is
    /// past the end of the simulation.
    async fn step(&mut self, who: &str, action: Action, text: Option<String>) -> Result<bool, ServiceError> {
        let pause = 10 + self.walker.rng.below(180) as i64;
        let calendar = &self.walker.service.rules().calendar;
        let Some(at) = calendar.add_minutes(self.at, pause, Basis::Working) else {
            return Ok(false);
        };
        if at > self.walker.until {
            return Ok(false);
        }
        let actor = if who == "reporter" { Actor::Reporter } else { self.walker.actor(who)? };
        let command = Command { note: text, ..Command::new(action) };
        self.walker.service.act(self.id, None, &command, &actor, at).await?;
        self.walker.commands += 1;
        self.at = at;
        Ok(true)
    }

    async fn run(
        &mut self,
        matter: &Matter,
        county: &str,
        community: &str,
        previous: Option<(CaseId, String)>,
    ) -> Result<(), ServiceError> {
        let operator = format!("op{county}");
        let grid_worker = format!("gw{community}");
        let city = self.walker.city;
        let Some(county_id) = city.jurisdictions.iter().find(|j| j.code == county).map(|j| j.id) else {
            return Ok(());
        };
        let roll = self.walker.rng.below(100);
        if roll < 5 {
            self.step(&operator, Action::Reject, note("经核实不属于本平台受理范围，已告知反映人")).await?;
            return Ok(());
        }
        if roll < 8 {
            if let Some((into, _)) = previous.filter(|(_, code)| *code == matter.code) {
                // Only into a case that still stands: not one rejected, merged or voided meanwhile.
                if self.walker.service.load(into).await?.status.accepts_merges() {
                    self.step(&operator, Action::Merge { into }, note("与在办事件反映同一问题，合并办理"))
                        .await?;
                    return Ok(());
                }
            }
        }
        let snapshot = self.walker.service.load(self.id).await?;
        if snapshot.matter.is_some() && snapshot.channel == Channel::GridPatrol && self.walker.rng.chance(30)
        {
            let done = self
                .step(
                    &grid_worker,
                    Action::ResolveOnSpot { matter: matter.clone() },
                    note("网格员现场劝导，问题已解决"),
                )
                .await?;
            if done && self.step(&operator, Action::Verify { passed: true }, None).await? {
                self.step(&operator, Action::Close, None).await?;
            }
            return Ok(());
        }
        if !self.step(&operator, Action::Register { matter: matter.clone(), priority: None }, None).await? {
            return Ok(());
        }
        let mut dispatcher = operator.clone();
        let mut county_for_departments = county_id;
        if self.walker.rng.chance(3) {
            if !self
                .step(&operator, Action::Escalate, note("涉及跨区协调，本级无法解决，提请市级统筹"))
                .await?
            {
                return Ok(());
            }
            dispatcher = format!("op{}", city.jurisdictions[0].code);
            county_for_departments = city.jurisdictions[0].id;
        }
        let Some(responsibility) = matter.responsibility_at(Level::County) else { return Ok(()) };
        let Some(lead) = city.department_for(&responsibility.lead, county_for_departments).cloned() else {
            return Ok(());
        };
        let assisting: Vec<_> = responsibility
            .assisting
            .iter()
            .filter_map(|kind| city.department_for(kind, county_for_departments))
            .filter(|d| d.id != lead.id)
            .cloned()
            .collect();
        let dispatch = Action::Dispatch {
            lead: lead.id,
            assisting: assisting.iter().map(|d| d.id).collect(),
            basis: Some(format!("依据权责清单「{}」，由{}主办", matter.name, lead.name)),
        };
        if !self.step(&dispatcher, dispatch.clone(), None).await? {
            return Ok(());
        }
        let handler = format!("dept{}", lead.code);
        if self.walker.rng.chance(5) {
            if !self.step(&handler, Action::Return, note("该事项不属于本部门职责，申请退回")).await?
            {
                return Ok(());
            }
            if !self.step(&dispatcher, dispatch, note("经核实仍由该部门主办，重新派遣")).await?
            {
                return Ok(());
            }
        }
        if !self.step(&handler, Action::Accept, None).await? {
            return Ok(());
        }
        for department in &assisting {
            if !self.step(&format!("dept{}", department.code), Action::Accept, None).await? {
                return Ok(());
            }
        }
        if self.walker.rng.chance(4) {
            let asked = self
                .step(
                    &handler,
                    Action::RequestExtension { minutes: 420 },
                    note("需协调产权单位，申请延期一个工作日"),
                )
                .await?;
            if !asked || !self.step(&dispatcher, Action::DecideExtension { approve: true }, None).await? {
                return Ok(());
            }
        }
        if !self.step(&handler, Action::ReportBack, note("已现场处置完毕，附处置前后照片")).await?
        {
            return Ok(());
        }
        if self.walker.rng.chance(10) {
            if !self
                .step(&grid_worker, Action::Verify { passed: false }, note("现场核查问题仍然存在，退回返工"))
                .await?
            {
                return Ok(());
            }
            if !self.step(&handler, Action::ReportBack, note("已二次处置，问题解决")).await? {
                return Ok(());
            }
        }
        if !self.step(&grid_worker, Action::Verify { passed: true }, None).await? {
            return Ok(());
        }
        if !self.step(&dispatcher, Action::Close, None).await? {
            return Ok(());
        }
        let reporter_can_rate = self.walker.service.load(self.id).await?.channel != Channel::Sensor;
        if reporter_can_rate && self.walker.rng.chance(75) {
            let score = match self.walker.rng.below(100) {
                0..=49 => 5,
                50..=79 => 4,
                80..=89 => 3,
                90..=94 => 2,
                _ => 1,
            };
            let comment = if score >= 4 { "处理及时，态度很好" } else { "问题没有彻底解决" };
            let rated =
                self.step("reporter", Action::Rate { score, comment: Some(comment.into()) }, None).await?;
            if rated && score <= 2 && self.walker.rng.chance(50) {
                self.step(&dispatcher, Action::Reopen, note("群众评价不满意，重新办理")).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiyu_domain::{replay, Rules, Status};

    #[test]
    fn communities_are_called_what_people_call_them() {
        assert_eq!(spoken_name("富新社区居委会"), "富新社区");
        assert_eq!(spoken_name("三星村委会"), "三星村");
        assert_eq!(spoken_name("江心沙农场"), "江心沙农场");
    }
    use shiyu_store::sqlite::SqliteStore;
    use shiyu_store::{Store, WriteOptions};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulated_cases_follow_the_loop_and_replay() {
        let city = crate::city::nantong().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
        store.put_jurisdictions(&city.jurisdictions).await.unwrap();
        store.put_departments(&city.departments).await.unwrap();
        store.put_categories(&city.categories).await.unwrap();
        store.put_matters(&city.matters).await.unwrap();
        store.put_users(&city.users).await.unwrap();
        let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
        let until = Timestamp::from_beijing(shiyu_domain::Date::from_ymd(2026, 11, 23).unwrap(), 17 * 60);
        let summary =
            walk(&service, &city, WalkOptions { cases: 300, seed: 42, until, days: 14 }).await.unwrap();
        assert_eq!(summary.cases, 300);
        assert!(summary.commands > 1500, "{summary:?}");
        assert_eq!(store.count_cases().await.unwrap(), 300);
        let mut statuses = std::collections::HashSet::new();
        for id in 1..=300 {
            let history = store.case_history(CaseId(id)).await.unwrap();
            let state = replay(history.iter().map(|e| &e.event)).unwrap().unwrap();
            state.check_invariants().unwrap();
            assert_eq!(Some(&state), store.load_case(CaseId(id)).await.unwrap().as_ref());
            statuses.insert(state.status);
        }
        for expected in
            [Status::Received, Status::Registered, Status::Handling, Status::Closed, Status::Rejected]
        {
            assert!(statuses.contains(&expected), "no {expected:?} case among {statuses:?}");
        }
    }
}
