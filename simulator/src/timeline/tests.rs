//! The picture is well-formed XML, draws what the timeline holds, and is the same every time.

use super::{Mark, MarkKind, MemberSample, Sample, Timeline, format_clock, render_svg};
use tandem_engine::{Health, Role};

fn member(role: Role, health: Health, accepting_writes: bool) -> MemberSample {
    MemberSample {
        role,
        health,
        accepting_writes,
        copying: false,
        rewinding: false,
    }
}

fn sample(at_ms: u64, state: &str, members: [MemberSample; 2]) -> Sample {
    Sample {
        at_ms,
        state: state.to_owned(),
        members: members.to_vec(),
    }
}

/// A failover after the active's process crashes, a partition, a switchover and a violation.
pub fn example() -> Timeline {
    let active = member(Role::Active, Health::Healthy, true);
    let standby = member(Role::Standby, Health::Healthy, false);
    let down = member(Role::None, Health::Down, false);
    let starting = member(Role::None, Health::Starting, false);
    let catching_up = member(Role::Standby, Health::CatchingUp, false);
    let copying = MemberSample {
        copying: true,
        ..catching_up
    };
    let unknown = member(Role::Standby, Health::Unknown, false);
    Timeline {
        title: "active-process-crash, seed 7".to_owned(),
        members: 2,
        duration_ms: 30 * 60_000,
        samples: vec![
            sample(0, "Initializing", [starting, starting]),
            sample(8_000, "Initializing", [active, starting]),
            sample(20_000, "Normal", [active, standby]),
            sample(120_000, "Normal", [down, standby]),
            sample(150_000, "ActiveDown", [down, standby]),
            sample(152_000, "ActiveDown", [down, active]),
            sample(153_000, "StandbyDown", [starting, active]),
            sample(170_000, "StandbyPartiallyStarting", [copying, active]),
            sample(190_000, "StandbyPartiallyStarting", [catching_up, active]),
            sample(200_000, "Normal", [standby, active]),
            sample(600_000, "Normal", [unknown, active]),
            sample(690_000, "Normal", [standby, active]),
            sample(
                1_200_000,
                "Switchover(member-0)",
                [standby, member(Role::None, Health::Healthy, false)],
            ),
            sample(
                1_203_000,
                "Switchover(member-0)",
                [active, member(Role::None, Health::Healthy, false)],
            ),
            sample(1_210_000, "StandbyPartiallyStarting", [active, catching_up]),
            sample(1_240_000, "Normal", [active, standby]),
            sample(1_500_000, "operator down", [active, standby]),
            sample(
                1_505_000,
                "Normal",
                [active, member(Role::Active, Health::Degraded, true)],
            ),
            sample(1_506_000, "Normal", [active, standby]),
        ],
        marks: vec![
            Mark {
                at_ms: 120_000,
                until_ms: Some(130_000),
                label: "crash-process member-0".to_owned(),
                kind: MarkKind::Fault,
            },
            Mark {
                at_ms: 600_000,
                until_ms: Some(690_000),
                label: "partition member-0 90s".to_owned(),
                kind: MarkKind::Fault,
            },
            Mark {
                at_ms: 1_200_000,
                until_ms: None,
                label: "switchover".to_owned(),
                kind: MarkKind::Action,
            },
            Mark {
                at_ms: 1_500_000,
                until_ms: Some(1_505_000),
                label: "operator-crash".to_owned(),
                kind: MarkKind::Fault,
            },
            Mark {
                at_ms: 1_505_000,
                until_ms: None,
                label: "no split brain: member-0 and member-1 accept writes".to_owned(),
                kind: MarkKind::Violation,
            },
        ],
    }
}

fn texts(document: &roxmltree::Document<'_>) -> Vec<String> {
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .map(|node| node.text().unwrap_or_default().to_owned())
        .collect()
}

fn count_class(document: &roxmltree::Document<'_>, class: &str) -> usize {
    document
        .descendants()
        .filter(|node| node.attribute("class") == Some(class))
        .count()
}

#[test]
fn the_picture_is_well_formed_and_holds_what_the_timeline_says() {
    let svg = render_svg(&example());
    let document =
        roxmltree::Document::parse(&svg).unwrap_or_else(|error| panic!("{error}\n{svg}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let texts = texts(&document);
    for expected in [
        "member-0",
        "member-1",
        "cluster state",
        "Normal",
        "StandbyPartiallyStarting",
        "crash-process member-0",
        "partition member-0 90s",
        "switchover",
        "no split brain: member-0 and member-1 accept writes",
        "accepting writes",
        "full copy",
        "Healthy",
        "Lost",
        "0:00",
        "30:00",
    ] {
        assert!(
            texts.iter().any(|text| text == expected),
            "{expected:?} not in {texts:?}"
        );
    }
    assert_eq!(count_class(&document, "lane"), 2);
    assert_eq!(
        count_class(&document, "violation"),
        2,
        "a marker and a line"
    );
    assert!(count_class(&document, "writes") >= 3);
    // The one copy, of member-0 from 2:50 to 3:10.
    let copies: Vec<_> = document
        .descendants()
        .filter(|node| node.attribute("class") == Some("copy"))
        .collect();
    assert_eq!(copies.len(), 1);
    let title = copies[0].first_child().and_then(|node| node.text());
    assert_eq!(title, Some("member-0 is copied in full 2:50–3:10"));
    assert!(svg.contains("#d50000"), "violations are red");
}

#[test]
fn equal_neighbouring_samples_draw_one_segment() {
    let svg = render_svg(&example());
    let document = roxmltree::Document::parse(&svg).unwrap();
    // Initializing, Normal, ActiveDown, StandbyDown, StandbyPartiallyStarting, Normal,
    // Switchover(member-0), StandbyPartiallyStarting, Normal, operator down, Normal.
    assert_eq!(count_class(&document, "state"), 11);
}

#[test]
fn the_picture_is_the_same_every_time() {
    assert_eq!(render_svg(&example()), render_svg(&example()));
}

#[test]
fn labels_are_escaped_and_empty_timelines_draw() {
    let mut timeline = example();
    timeline.title = "a <b> & \"c\" 'd' \u{1}".to_owned();
    timeline.marks[2].label = "<script>&".to_owned();
    let svg = render_svg(&timeline);
    let document = roxmltree::Document::parse(&svg).unwrap();
    assert!(texts(&document).iter().any(|text| text == "<script>&"));
    for empty in [
        Timeline::default(),
        Timeline {
            members: 2,
            duration_ms: 0,
            ..Timeline::default()
        },
    ] {
        let svg = render_svg(&empty);
        roxmltree::Document::parse(&svg).unwrap_or_else(|error| panic!("{error}\n{svg}"));
    }
}

#[test]
fn many_marks_stay_within_a_bounded_number_of_rows() {
    let mut timeline = example();
    timeline.marks = (0..500)
        .map(|index| Mark {
            at_ms: index * 1_000,
            until_ms: Some(index * 1_000 + 60_000),
            label: format!("fault {index}"),
            kind: MarkKind::Fault,
        })
        .collect();
    let svg = render_svg(&timeline);
    let document = roxmltree::Document::parse(&svg).unwrap();
    let height: f64 = document
        .root_element()
        .attribute("height")
        .unwrap()
        .parse()
        .unwrap();
    assert!(height < 1_000.0, "{height}");
}

#[test]
fn the_axis_ends_at_the_end_of_the_run() {
    let mut timeline = example();
    timeline.duration_ms = 23 * 60_000 + 28_000;
    let end = timeline.duration_ms;
    timeline.samples.retain(|sample| sample.at_ms < end);
    timeline
        .marks
        .retain(|mark| mark.until_ms.unwrap_or(mark.at_ms) < end);
    let svg = render_svg(&timeline);
    let document = roxmltree::Document::parse(&svg).unwrap();
    let ticks: Vec<String> = document
        .descendants()
        .filter(|node| node.attribute("class") == Some("tick"))
        .map(|node| node.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ticks.first().map(String::as_str), Some("0:00"));
    assert_eq!(ticks.last().map(String::as_str), Some("23:28"));
    assert!(ticks.len() <= 16, "{ticks:?}");
}

#[test]
fn extreme_times_and_odd_marks_still_draw() {
    let mut timeline = example();
    timeline.duration_ms = u64::MAX;
    timeline.samples.push(sample(
        u64::MAX,
        "Failed",
        [member(Role::None, Health::Lost, false); 2],
    ));
    timeline.marks.push(Mark {
        at_ms: u64::MAX,
        until_ms: Some(5),
        label: "ends before it starts".to_owned(),
        kind: MarkKind::Fault,
    });
    timeline.members = 3;
    let svg = render_svg(&timeline);
    let document = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(count_class(&document, "lane"), 3);
}

#[test]
fn the_clock_reads_minutes_and_seconds() {
    assert_eq!(format_clock(0), "0:00");
    assert_eq!(format_clock(90_000), "1:30");
    assert_eq!(format_clock(3_725_000), "62:05");
    assert_eq!(format_clock(1_500), "0:01.5");
    assert_eq!(format_clock(51_005), "0:51.005");
}

mod generated {
    use super::super::{Mark, MarkKind, MemberSample, Sample, Timeline, render_svg};
    use proptest::prelude::*;
    use tandem_engine::{Health, Role};

    fn member() -> impl Strategy<Value = MemberSample> {
        let role = prop_oneof![Just(Role::Active), Just(Role::Standby), Just(Role::None)];
        let health = proptest::sample::select(vec![
            Health::Healthy,
            Health::CatchingUp,
            Health::Starting,
            Health::Degraded,
            Health::Unknown,
            Health::Down,
            Health::Gone,
            Health::Lost,
        ]);
        (role, health, any::<bool>(), any::<(bool, bool)>()).prop_map(
            |(role, health, accepting_writes, (copying, rewinding))| MemberSample {
                role,
                health,
                accepting_writes,
                copying,
                rewinding,
            },
        )
    }

    fn timeline() -> impl Strategy<Value = Timeline> {
        let state = prop_oneof![
            Just("Normal".to_owned()),
            Just("WaitingForActive(member-1)".to_owned()),
            Just("operator down".to_owned()),
            any::<String>(),
        ];
        let sample = (
            0_u64..4_000_000,
            state,
            proptest::collection::vec(member(), 0..4),
        )
            .prop_map(|(at_ms, state, members)| Sample {
                at_ms,
                state,
                members,
            });
        let kind = prop_oneof![
            Just(MarkKind::Fault),
            Just(MarkKind::Action),
            Just(MarkKind::Violation)
        ];
        let mark = (
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            any::<String>(),
            kind,
        )
            .prop_map(|(at_ms, until_ms, label, kind)| Mark {
                at_ms,
                until_ms,
                label,
                kind,
            });
        (
            any::<String>(),
            0_u8..5,
            any::<u64>(),
            proptest::collection::vec(sample, 0..40),
            proptest::collection::vec(mark, 0..30),
        )
            .prop_map(|(title, members, duration_ms, mut samples, marks)| {
                samples.sort_by_key(|sample| sample.at_ms);
                Timeline {
                    title,
                    members,
                    duration_ms,
                    samples,
                    marks,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_timeline_draws_well_formed_xml(timeline in timeline()) {
            let svg = render_svg(&timeline);
            let parsed = roxmltree::Document::parse(&svg);
            prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
        }
    }
}
