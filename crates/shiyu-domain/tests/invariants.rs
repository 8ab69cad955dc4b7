//! State-machine properties: whatever sequence of commands anyone sends, the accepted ones never lead a case
//! into an illegal state, every event counts one version, and replaying the log (also after a JSON round trip)
//! gives back exactly the state that was built step by step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use shiyu_domain::{apply, decide, next_alarm, replay, sla, Action, CaseState, Command, Event, Timestamp};

/// How many command templates `command` knows.
const COMMANDS: usize = 31;

/// Every action, several with more than one variant, each with a note so that most reach the real checks.
fn command(index: usize, now: Timestamp) -> Command {
    match index {
        0 => receive(),
        1 => register(),
        2 => register_as(gas_leak()),
        3 => reject(),
        4 => dispatch(),
        5 => dispatch_to(UNRELATED_DEPT, &[]),
        6 => dispatch_to(LEAD_DEPT, &[LEAD_DEPT]),
        7 => accept(),
        8 => report_back(),
        9 => verify(true),
        10 => verify(false),
        11 => Command { reply: Some("问题已处理完毕，感谢您的反映".into()), ..close() },
        12 => rate(5),
        13 => rate(1),
        14 => rate(0),
        15 => resolve_on_spot(),
        16 => return_case(),
        17 => request_extension(240),
        18 => request_extension(0),
        19 => decide_extension(true),
        20 => decide_extension(false),
        21 => supervise(now.plus_minutes(600)),
        22 => supervise(now.plus_minutes(-1)),
        23 => escalate(),
        24 => merge(),
        25 => suspend(),
        26 => resume(),
        27 => void(),
        28 => reopen(),
        29 => instruct(),
        _ => bare(Action::Instruct),
    }
}

/// One step of a random history.
#[derive(Clone, Debug)]
struct Step {
    command: usize,
    actor: usize,
    /// How far the clock moves before the step.
    minutes: i64,
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Send exactly this command as this actor; most are refused.
    Blind,
    /// Choose among the commands the case accepts now, and among the actors it accepts them from: a random walk
    /// through the loop, which reaches the deep states blind commands hardly ever do.
    Walk,
    /// Walk, but neither into the end of the case nor aside (suspension, supervision, instructions), so that
    /// long walks go round the loop.
    Advance,
}

/// Commands that end a case for good or stop or leave its course: reject, supervise, merge, suspend, void, instruct.
const NOT_ADVANCING: [usize; 8] = [3, 21, 22, 24, 25, 27, 29, 30];

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let minutes = prop_oneof![3 => 0..=20i64, 1 => 0..=4_000i64];
    let mode = prop_oneof![5 => Just(Mode::Blind), 1 => Just(Mode::Walk), 10 => Just(Mode::Advance)];
    let step = (0..COMMANDS, 0..ACTORS.len(), minutes, mode)
        .prop_map(|(command, actor, minutes, mode)| Step { command, actor, minutes, mode });
    proptest::collection::vec(step, 0..=40)
}

/// Plays `steps` on the fixture's received case, checking the invariants after every step. Returns the log and
/// the state built from it one event at a time.
fn play(steps: &[Step]) -> Result<(Vec<Event>, CaseState), TestCaseError> {
    let start = received();
    let rules = start.rules.clone();
    let mut now = start.now;
    let mut events = start.events.clone();
    let mut state = start.state().clone();
    for step in steps {
        now = now.plus_minutes(step.minutes);
        let attempt = |index: usize, actor: usize| {
            let (command, actor) = (command(index, now), ACTORS[actor].1);
            decide(Some(&state), &command, &actor, now, &rules).map(|events| (command, actor, events))
        };
        let outcome = if step.mode == Mode::Blind {
            attempt(step.command, step.actor).ok()
        } else {
            // Every command some actor may send now, then one of the actors who may.
            let mut accepted: Vec<Vec<_>> = Vec::new();
            for index in (0..COMMANDS).filter(|i| step.mode == Mode::Walk || !NOT_ADVANCING.contains(i)) {
                let actors: Vec<_> = (0..ACTORS.len()).filter_map(|a| attempt(index, a).ok()).collect();
                if !actors.is_empty() {
                    accepted.push(actors);
                }
            }
            let count = accepted.len().max(1);
            accepted
                .get(step.command % count)
                .and_then(|actors| actors.get(step.actor % actors.len()))
                .cloned()
        };
        if let Some((command, actor, new_events)) = outcome {
            prop_assert_eq!(new_events.len(), 1, "{} gives one event", command.action.name());
            for event in new_events {
                prop_assert_eq!(event.actor, actor);
                prop_assert_eq!(event.at, now);
                state = apply(Some(state), &event)
                    .map_err(|e| TestCaseError::fail(format!("apply refused {event:?}: {e}")))?;
                events.push(event);
            }
        }
        // The deadline engine's turn: every alarm due now fires, through the domain, exactly once.
        let mut fired = 0;
        while let Some(alarm) = next_alarm(&state).filter(|alarm| alarm.at <= now) {
            let new_events = sla::fire(&state, alarm, now, &rules)
                .map_err(|e| TestCaseError::fail(format!("a due alarm {alarm:?} was refused: {e}")))?;
            for event in new_events {
                prop_assert_eq!(event.actor, shiyu_domain::Actor::System);
                state = apply(Some(state), &event)
                    .map_err(|e| TestCaseError::fail(format!("apply refused {event:?}: {e}")))?;
                events.push(event);
            }
            prop_assert!(sla::fire(&state, alarm, now, &rules).is_err(), "{:?} fires only once", alarm);
            fired += 1;
            prop_assert!(fired < 20, "alarms keep coming: {:?}", next_alarm(&state));
        }
        if let Some(ahead) = next_alarm(&state) {
            prop_assert!(
                sla::fire(&state, ahead, now, &rules).is_err(),
                "an alarm ahead does not fire early"
            );
        }
        if let Err(rule) = state.check_invariants() {
            let history: Vec<_> = events.iter().map(|e| (e.change.kind(), actor_name(&e.actor))).collect();
            return Err(TestCaseError::fail(format!("{rule} after {history:?}")));
        }
        prop_assert_eq!(state.version, events.len() as u64);
        prop_assert_eq!(state.updated_at, events.last().map_or(now, |e| e.at));
    }
    Ok((events, state))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_history_breaks_an_invariant_and_replay_reproduces_the_state(steps in steps()) {
        let (events, state) = play(&steps)?;
        let replayed = replay(&events).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(replayed, Some(state));
    }

    /// The fixture's location is made of binary fractions: with serde_json's default features an arbitrary
    /// `f64` may come back one unit in the last place off.
    #[test]
    fn events_survive_a_json_round_trip(steps in steps()) {
        let (events, state) = play(&steps)?;
        let json = serde_json::to_string(&events).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Vec<Event> = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &events);
        for (event, original) in back.iter().zip(&events) {
            let one = serde_json::to_string(original).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(serde_json::to_string(event).ok(), Some(one), "serializing again gives the same text");
        }
        let replayed = replay(&back).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(replayed, Some(state));
    }
}
