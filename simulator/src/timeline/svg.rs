//! The timeline as a self-contained SVG: the cluster state as a band across the top, faults,
//! actions and violations marked below it, one lane per member (role as the fill, health as a
//! strip beneath, writes accepted as a stripe on top), a time axis and a legend.
//!
//! The output depends on the timeline alone: no clock, no randomness, no hash-map order, and
//! numbers printed with a fixed precision, so the same run draws the same bytes.

use super::{Mark, MarkKind, MemberSample, Sample, Timeline};
use std::fmt::Write as _;
use tandem_engine::{Health, Role, StateKind};

/// The picture's width, in pixels.
const WIDTH: f64 = 1200.0;
/// Room for the lane names on the left.
const LEFT: f64 = 120.0;
/// Room on the right, so the last axis label fits.
const RIGHT: f64 = 30.0;
/// The state band's height.
const BAND_HEIGHT: f64 = 26.0;
/// The height of one row of marks.
const MARK_ROW_HEIGHT: f64 = 20.0;
/// Rows of marks before the rest share the last one: a run with hundreds of faults still draws.
const MARK_ROWS_MAX: usize = 16;
/// Rows of names for states too short to hold their name; more are left to the tooltips.
const CALLOUT_ROWS_MAX: usize = 6;
/// The height of one row of such names.
const CALLOUT_ROW_HEIGHT: f64 = 13.0;
/// The narrowest writes stripe drawn.
const WRITES_WIDTH_MIN: f64 = 4.0;
/// Roughly how wide one character of the 9.5px names is.
const SMALL_CHAR_WIDTH: f64 = 5.6;
/// One member lane: the role bar and the health strip beneath it.
const LANE_HEIGHT: f64 = 40.0;
/// The role bar's height within a lane.
const ROLE_HEIGHT: f64 = 22.0;
/// The health strip's height.
const HEALTH_HEIGHT: f64 = 7.0;
/// The stripe that shows a member accepts writes.
const WRITES_HEIGHT: f64 = 5.0;
/// The stripe, at the bottom of the role bar, that shows a member's data is being copied.
const COPY_HEIGHT: f64 = 5.0;
const COPY_COLOUR: &str = "#ef6c00";
/// The same stripe while a member's diverged suffix is rewound.
const REWIND_COLOUR: &str = "#6a1b9a";
/// Roughly how wide one character of the 11px labels is, to decide what fits.
const CHAR_WIDTH: f64 = 6.4;
/// At most this many axis ticks.
const TICKS_MAX: u64 = 14;

const FAULT_COLOUR: &str = "#7b1fa2";
const ACTION_COLOUR: &str = "#1565c0";
const VIOLATION_COLOUR: &str = "#d50000";
/// Accepting writes is drawn as caution tape, unlike any other fill, so that two members
/// accepting writes at once (split brain) cannot be missed.
const WRITES_FILL: &str = "url(#writes)";

/// Draws `timeline` as a standalone SVG document.
pub fn render_svg(timeline: &Timeline) -> String {
    let layout = Layout::new(timeline);
    let mut svg = String::new();
    open_document(&mut svg, timeline, &layout);
    state_band(&mut svg, &layout);
    for (index, row) in layout.mark_rows.iter().enumerate() {
        marks_row(&mut svg, timeline, row, index, &layout);
    }
    violation_lines(&mut svg, timeline, &layout);
    for member in 0..timeline.members {
        lane(&mut svg, timeline, member, &layout);
    }
    time_axis(&mut svg, &layout);
    overlays(&mut svg, timeline, &layout);
    legend(&mut svg, &layout);
    svg.push_str("</svg>\n");
    svg
}

/// Where everything goes.
struct Layout {
    /// The simulated time shown, at least 1 ms so that the scale is defined.
    duration_ms: u64,
    band_top: f64,
    /// The cluster state's runs: from, until, the state.
    states: Vec<(u64, u64, String)>,
    /// For each row of names of short states, the indices into `states` named there.
    callout_rows: Vec<Vec<usize>>,
    marks_top: f64,
    /// For each row of marks, the indices into `Timeline::marks` drawn there.
    mark_rows: Vec<Vec<usize>>,
    lanes_top: f64,
    axis_top: f64,
    legend_top: f64,
    height: f64,
}

impl Layout {
    fn new(timeline: &Timeline) -> Layout {
        let last_sample = timeline.samples.last().map_or(0, |sample| sample.at_ms);
        let last_mark = timeline
            .marks
            .iter()
            .map(|mark| mark.until_ms.unwrap_or(mark.at_ms).max(mark.at_ms))
            .max()
            .unwrap_or(0);
        let duration_ms = timeline.duration_ms.max(last_sample).max(last_mark).max(1);
        let band_top = 44.0;
        let mut layout = Layout {
            duration_ms,
            band_top,
            states: runs(&timeline.samples, duration_ms, |sample| {
                Some(sample.state.clone())
            }),
            callout_rows: Vec::new(),
            marks_top: 0.0,
            mark_rows: Vec::new(),
            lanes_top: 0.0,
            axis_top: 0.0,
            legend_top: 0.0,
            height: 0.0,
        };
        layout.callout_rows = layout.assign_callouts();
        let callouts_height = CALLOUT_ROW_HEIGHT * layout.callout_rows.len() as f64;
        layout.marks_top = band_top + BAND_HEIGHT + callouts_height + 10.0;
        layout.mark_rows = layout.assign_rows(&timeline.marks);
        layout.lanes_top = layout.marks_top + MARK_ROW_HEIGHT * layout.mark_rows.len() as f64 + 8.0;
        layout.axis_top = layout.lanes_top + LANE_HEIGHT * f64::from(timeline.members) + 4.0;
        layout.legend_top = layout.axis_top + 34.0;
        layout.height = layout.legend_top + LEGEND_HEIGHT;
        layout
    }

    /// The x coordinate of a time.
    fn x(&self, at_ms: u64) -> f64 {
        let plot = WIDTH - LEFT - RIGHT;
        LEFT + plot * (at_ms.min(self.duration_ms) as f64) / (self.duration_ms as f64)
    }

    /// Whether a state's run is wide enough to write its name inside.
    fn holds_its_name(&self, from: u64, until: u64, state: &str) -> bool {
        self.x(until) - self.x(from) > label_width(state) + 8.0
    }

    /// Rows of names, beneath the band, for the runs too short to hold theirs.
    fn assign_callouts(&self) -> Vec<Vec<usize>> {
        let mut rows: Vec<Vec<usize>> = Vec::new();
        let mut ends: Vec<f64> = Vec::new();
        for (index, (from, until, state)) in self.states.iter().enumerate() {
            if self.holds_its_name(*from, *until, state) {
                continue;
            }
            let start = self.x(*from);
            let end = start + 6.0 + state.chars().count() as f64 * SMALL_CHAR_WIDTH;
            let row = match ends.iter().position(|row_end| *row_end < start) {
                Some(row) => row,
                None if rows.len() < CALLOUT_ROWS_MAX => {
                    rows.push(Vec::new());
                    ends.push(f64::MIN);
                    rows.len() - 1
                }
                None => continue,
            };
            rows[row].push(index);
            ends[row] = end;
        }
        rows
    }

    /// Puts each mark in the first row where neither its bar nor its label overlaps another.
    fn assign_rows(&self, marks: &[Mark]) -> Vec<Vec<usize>> {
        let mut rows: Vec<Vec<usize>> = Vec::new();
        let mut ends: Vec<f64> = Vec::new();
        for (index, mark) in marks.iter().enumerate() {
            let x = self.x(mark.at_ms);
            let bar_end = mark.until_ms.map_or(x, |until| self.x(until));
            let (label_start, label_end) = label_extent(x, &mark.label);
            let start = label_start.min(x - 4.0);
            let end = bar_end.max(label_end);
            let row = match ends.iter().position(|row_end| *row_end < start) {
                Some(row) => row,
                None if rows.len() < MARK_ROWS_MAX => {
                    rows.push(Vec::new());
                    ends.push(f64::MIN);
                    rows.len() - 1
                }
                None => rows.len() - 1,
            };
            rows[row].push(index);
            ends[row] = ends[row].max(end);
        }
        rows
    }
}

fn label_width(label: &str) -> f64 {
    label.chars().count() as f64 * CHAR_WIDTH
}

/// Where a label beside a mark at `x` goes: to its right, or to its left when it would run off
/// the picture.
fn label_extent(x: f64, label: &str) -> (f64, f64) {
    let width = label_width(label);
    if x + 5.0 + width > WIDTH - 4.0 {
        (x - 5.0 - width, x - 5.0)
    } else {
        (x + 5.0, x + 5.0 + width)
    }
}

fn open_document(svg: &mut String, timeline: &Timeline, layout: &Layout) {
    let height = layout.height;
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH:.0} {height:.0}\" font-family=\"DejaVu Sans, Verdana, sans-serif\" \
         font-size=\"11\">"
    );
    let title = format!(
        "{}, {} simulated",
        timeline.title,
        format_clock(timeline.duration_ms)
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(&title));
    let _ = writeln!(
        svg,
        "<defs><pattern id=\"writes\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffd600\"/>\
         <rect width=\"3\" height=\"6\" fill=\"#212121\"/></pattern></defs>"
    );
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"12\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        escape(&title)
    );
}

/// Runs of equal values: `(from, until, value)`, each sample lasting until the next.
fn runs<T: PartialEq + Clone>(
    samples: &[Sample],
    end_ms: u64,
    value: impl Fn(&Sample) -> Option<T>,
) -> Vec<(u64, u64, T)> {
    let mut runs: Vec<(u64, u64, T)> = Vec::new();
    for (index, sample) in samples.iter().enumerate() {
        let until = samples.get(index + 1).map_or(end_ms, |next| next.at_ms);
        let Some(current) = value(sample) else {
            continue;
        };
        match runs.last_mut() {
            Some((_, last_until, last)) if *last == current && *last_until == sample.at_ms => {
                *last_until = until;
            }
            _ => runs.push((sample.at_ms, until, current)),
        }
    }
    runs
}

fn state_band(svg: &mut String, layout: &Layout) {
    let top = layout.band_top;
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-weight=\"bold\">cluster state</text>",
        LEFT - 8.0,
        top + BAND_HEIGHT / 2.0 + 4.0
    );
    for (from, until, state) in &layout.states {
        let (from, until) = (*from, *until);
        let (x, end) = (layout.x(from), layout.x(until));
        let (fill, ink) = state_colours(state);
        let _ = writeln!(
            svg,
            "<rect class=\"state\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{BAND_HEIGHT:.1}\" \
             fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"1\"><title>{} {}–{}</title></rect>",
            (end - x).max(0.5),
            escape(state),
            format_clock(from),
            format_clock(until)
        );
        if layout.holds_its_name(from, until, state) {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{ink}\">{}</text>",
                (x + end) / 2.0,
                top + BAND_HEIGHT / 2.0 + 4.0,
                escape(state)
            );
        }
    }
    callouts(svg, layout);
}

/// The names of short states, beneath the band, each with a line up to its start. Lines go
/// first and the names carry a white halo, so that a line passing behind a name does not cross
/// it out.
fn callouts(svg: &mut String, layout: &Layout) {
    let band_bottom = layout.band_top + BAND_HEIGHT;
    let placed = || {
        layout
            .callout_rows
            .iter()
            .enumerate()
            .flat_map(|(row, indices)| {
                let baseline = band_bottom + CALLOUT_ROW_HEIGHT * (row as f64 + 1.0) - 2.0;
                indices
                    .iter()
                    .filter_map(|index| layout.states.get(*index))
                    .map(move |(from, _, state)| (layout.x(*from), baseline, state))
            })
    };
    for (x, baseline, _) in placed() {
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{band_bottom:.1}\" x2=\"{x:.1}\" y2=\"{baseline:.1}\" \
             stroke=\"#757575\" stroke-width=\"0.8\"/>"
        );
    }
    for (x, baseline, state) in placed() {
        let _ = writeln!(
            svg,
            "<text class=\"callout\" x=\"{:.1}\" y=\"{baseline:.1}\" font-size=\"9.5\" \
             fill=\"#424242\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
            x + 3.0,
            escape(state)
        );
    }
}

/// The fill and the text colour of a state, by what kind of situation it is.
fn state_colours(state: &str) -> (&'static str, &'static str) {
    let kind = StateKind::from_name(state.split('(').next().unwrap_or(state));
    match kind {
        Some(StateKind::Normal) => ("#66bb6a", "#ffffff"),
        Some(
            StateKind::Initializing
            | StateKind::Starting
            | StateKind::StandbyPartiallyStarting
            | StateKind::Reexamine,
        ) => ("#90caf9", "#0d2a4a"),
        Some(StateKind::Switchover) => ("#4db6ac", "#ffffff"),
        Some(
            StateKind::ActiveDown
            | StateKind::StandbyDown
            | StateKind::StandbyPartiallyDown
            | StateKind::WaitingForActive,
        ) => ("#ffb74d", "#3e2100"),
        Some(StateKind::BothDown | StateKind::Failed) => ("#e57373", "#ffffff"),
        Some(StateKind::ManualInterventionRequired) => ("#ba68c8", "#ffffff"),
        Some(StateKind::Stopping | StateKind::Stopped) => ("#bdbdbd", "#212121"),
        // `operator down`, or anything the runner adds: a neutral dark grey.
        None => ("#616161", "#ffffff"),
    }
}

fn marks_row(svg: &mut String, timeline: &Timeline, row: &[usize], index: usize, layout: &Layout) {
    let top = layout.marks_top + MARK_ROW_HEIGHT * index as f64;
    for mark in row.iter().filter_map(|mark| timeline.marks.get(*mark)) {
        let x = layout.x(mark.at_ms);
        let colour = mark_colour(mark.kind);
        let weight = if mark.kind == MarkKind::Violation {
            "bold"
        } else {
            "normal"
        };
        match (mark.kind, mark.until_ms) {
            (MarkKind::Fault, Some(until)) => {
                let end = layout.x(until.max(mark.at_ms));
                let _ = writeln!(
                    svg,
                    "<rect class=\"fault\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" \
                     rx=\"2\" fill=\"{colour}\"/>",
                    top + 12.0,
                    (end - x).max(2.0)
                );
            }
            _ => {
                // An instant: a small downward triangle on the row's baseline.
                let y = top + 18.0;
                let _ = writeln!(
                    svg,
                    "<path class=\"{}\" d=\"M {:.1} {:.1} L {:.1} {:.1} L {x:.1} {y:.1} Z\" \
                     fill=\"{colour}\"/>",
                    mark_class(mark.kind),
                    x - 4.0,
                    y - 7.0,
                    x + 4.0,
                    y - 7.0
                );
            }
        }
        let (label_x, _) = label_extent(x, &mark.label);
        let _ = writeln!(
            svg,
            "<text x=\"{label_x:.1}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"{weight}\">{}</text>",
            top + 10.0,
            escape(&mark.label)
        );
    }
}

fn mark_colour(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Fault => FAULT_COLOUR,
        MarkKind::Action => ACTION_COLOUR,
        MarkKind::Violation => VIOLATION_COLOUR,
    }
}

fn mark_class(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Fault => "fault",
        MarkKind::Action => "action",
        MarkKind::Violation => "violation",
    }
}

fn lane(svg: &mut String, timeline: &Timeline, member: u8, layout: &Layout) {
    let top = layout.lanes_top + LANE_HEIGHT * f64::from(member);
    let _ = writeln!(
        svg,
        "<text class=\"lane\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-weight=\"bold\">member-{member}</text>",
        LEFT - 8.0,
        top + ROLE_HEIGHT / 2.0 + 4.0
    );
    let member_at = |sample: &Sample| -> Option<MemberSample> {
        sample.members.get(usize::from(member)).copied()
    };
    let end = layout.duration_ms;
    for (from, until, role) in runs(&timeline.samples, end, |s| member_at(s).map(|m| m.role)) {
        let (x, width) = span(layout, from, until);
        let _ = writeln!(
            svg,
            "<rect class=\"role\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{ROLE_HEIGHT:.1}\" \
             fill=\"{}\"><title>member-{member} {} {}–{}</title></rect>",
            role_colour(role),
            role_name(role),
            format_clock(from),
            format_clock(until)
        );
        if width > label_width(role_name(role)) + 8.0 && role != Role::None {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
                x + 4.0,
                top + ROLE_HEIGHT / 2.0 + 6.0,
                if role == Role::Active {
                    "#ffffff"
                } else {
                    "#0d2a4a"
                },
                role_name(role)
            );
        }
    }
    let writes = runs(&timeline.samples, end, |s| {
        member_at(s).map(|m| m.accepting_writes)
    });
    for (from, until, _) in writes.into_iter().filter(|(_, _, writes)| *writes) {
        // Wide enough to see even when it lasts a moment: a brief split brain must show.
        let (x, width) = span(layout, from, until);
        let width = width.max(WRITES_WIDTH_MIN);
        let _ = writeln!(
            svg,
            "<rect class=\"writes\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" \
             height=\"{WRITES_HEIGHT:.1}\" fill=\"{WRITES_FILL}\"><title>member-{member} accepts writes \
             {}–{}</title></rect>",
            format_clock(from),
            format_clock(until)
        );
    }
    let copies = runs(&timeline.samples, end, |s| member_at(s).map(|m| m.copying));
    for (from, until, _) in copies.into_iter().filter(|(_, _, copying)| *copying) {
        let (x, width) = span(layout, from, until);
        let _ = writeln!(
            svg,
            "<rect class=\"copy\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" \
             height=\"{COPY_HEIGHT:.1}\" fill=\"{COPY_COLOUR}\"><title>member-{member} is copied in \
             full {}–{}</title></rect>",
            top + ROLE_HEIGHT - COPY_HEIGHT,
            format_clock(from),
            format_clock(until)
        );
    }
    let rewinds = runs(&timeline.samples, end, |s| {
        member_at(s).map(|m| m.rewinding)
    });
    for (from, until, _) in rewinds.into_iter().filter(|(_, _, rewinding)| *rewinding) {
        let (x, width) = span(layout, from, until);
        let _ = writeln!(
            svg,
            "<rect class=\"rewind\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" \
             height=\"{COPY_HEIGHT:.1}\" fill=\"{REWIND_COLOUR}\"><title>member-{member} is rewound \
             {}–{}</title></rect>",
            top + ROLE_HEIGHT - COPY_HEIGHT,
            format_clock(from),
            format_clock(until)
        );
    }
    let health_top = top + ROLE_HEIGHT + 2.0;
    for (from, until, health) in runs(&timeline.samples, end, |s| member_at(s).map(|m| m.health)) {
        let (x, width) = span(layout, from, until);
        let _ = writeln!(
            svg,
            "<rect class=\"health\" x=\"{x:.1}\" y=\"{health_top:.1}\" width=\"{width:.1}\" \
             height=\"{HEALTH_HEIGHT:.1}\" fill=\"{}\"><title>member-{member} {} {}–{}</title></rect>",
            health_colour(health),
            health.name(),
            format_clock(from),
            format_clock(until)
        );
    }
}

fn span(layout: &Layout, from: u64, until: u64) -> (f64, f64) {
    let x = layout.x(from);
    (x, (layout.x(until) - x).max(0.5))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Active => "Active",
        Role::Standby => "Standby",
        Role::None => "None",
    }
}

fn role_colour(role: Role) -> &'static str {
    match role {
        Role::Active => "#1565c0",
        Role::Standby => "#90caf9",
        Role::None => "#eceff1",
    }
}

fn health_colour(health: Health) -> &'static str {
    match health {
        Health::Healthy => "#2e7d32",
        Health::CatchingUp => "#9ccc65",
        Health::Starting => "#4dd0e1",
        Health::Degraded => "#fdd835",
        Health::Unknown => "#9e9e9e",
        Health::Down => "#e53935",
        Health::Gone => "#6d4c41",
        Health::Lost => "#000000",
    }
}

/// Ticks at a round step, labelled minutes:seconds, with faint lines through the lanes.
fn time_axis(svg: &mut String, layout: &Layout) {
    let top = layout.axis_top;
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT:.1}\" y1=\"{top:.1}\" x2=\"{:.1}\" y2=\"{top:.1}\" stroke=\"#424242\"/>",
        WIDTH - RIGHT
    );
    let step = tick_step(layout.duration_ms);
    let mut at_ms = 0;
    let mut last_tick_ms = 0;
    while at_ms <= layout.duration_ms {
        last_tick_ms = at_ms;
        let x = layout.x(at_ms);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#000000\" \
             stroke-opacity=\"0.12\"/>",
            layout.band_top,
            top + 5.0
        );
        let _ = writeln!(
            svg,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + 18.0,
            format_clock(at_ms)
        );
        // Near the end of time the next tick does not exist.
        let Some(next) = at_ms.checked_add(step) else {
            break;
        };
        at_ms = next;
    }
    // The end of the run, unless a round tick already stands close to it.
    let end = layout.x(layout.duration_ms);
    if end - layout.x(last_tick_ms) >= 44.0 {
        let _ = writeln!(
            svg,
            "<line x1=\"{end:.1}\" y1=\"{top:.1}\" x2=\"{end:.1}\" y2=\"{:.1}\" stroke=\"#424242\"/>\n\
             <text class=\"tick\" x=\"{end:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             font-weight=\"bold\">{}</text>",
            top + 5.0,
            top + 18.0,
            format_clock(layout.duration_ms)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#616161\">time (m:ss)</text>",
        LEFT - 22.0,
        top + 18.0
    );
}

/// The smallest round step that gives at most [`TICKS_MAX`] ticks.
fn tick_step(duration_ms: u64) -> u64 {
    const STEPS_MS: [u64; 16] = [
        100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000,
    ];
    STEPS_MS
        .into_iter()
        .find(|step| duration_ms / step <= TICKS_MAX)
        .unwrap_or_else(|| duration_ms.div_ceil(TICKS_MAX).max(1))
}

/// Red lines at the violations, drawn before the lanes: they cross the band, the marks and the
/// gaps between lanes, but never cover what a member was doing at that moment (a split brain of
/// a moment is exactly what a reader looks for there).
fn violation_lines(svg: &mut String, timeline: &Timeline, layout: &Layout) {
    let violations = timeline
        .marks
        .iter()
        .filter(|mark| mark.kind == MarkKind::Violation);
    for mark in violations {
        let x = layout.x(mark.at_ms);
        let _ = writeln!(
            svg,
            "<line class=\"violation\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" \
             stroke=\"{VIOLATION_COLOUR}\" stroke-width=\"2\"/>",
            layout.band_top, layout.axis_top
        );
    }
}

/// Over the lanes: a shaded interval for each fault with a duration and a dashed line for each
/// action, light enough to see the lanes through.
fn overlays(svg: &mut String, timeline: &Timeline, layout: &Layout) {
    let (top, bottom) = (layout.lanes_top, layout.axis_top);
    for mark in &timeline.marks {
        let x = layout.x(mark.at_ms);
        match (mark.kind, mark.until_ms) {
            (MarkKind::Fault, Some(until)) => {
                let width = (layout.x(until.max(mark.at_ms)) - x).max(1.0);
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" \
                     fill=\"{FAULT_COLOUR}\" fill-opacity=\"0.10\" stroke=\"{FAULT_COLOUR}\" \
                     stroke-opacity=\"0.35\" stroke-dasharray=\"2 2\"/>",
                    bottom - top
                );
            }
            (MarkKind::Violation, _) => {}
            (kind, _) => {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" \
                     stroke=\"{}\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>",
                    mark_colour(kind)
                );
            }
        }
    }
}

/// The legend's height: four rows.
const LEGEND_HEIGHT: f64 = 4.0 * 18.0 + 14.0;

fn legend(svg: &mut String, layout: &Layout) {
    let top = layout.legend_top;
    let roles = [Role::Active, Role::Standby, Role::None];
    let mut role_items: Vec<(String, &str)> = roles
        .iter()
        .map(|role| (role_name(*role).to_owned(), role_colour(*role)))
        .collect();
    role_items.push(("full copy".to_owned(), COPY_COLOUR));
    role_items.push(("rewind".to_owned(), REWIND_COLOUR));
    let mut health_items: Vec<(String, &str)> = HEALTHS
        .iter()
        .map(|health| (health.name().to_owned(), health_colour(*health)))
        .collect();
    health_items.push(("accepting writes".to_owned(), WRITES_FILL));
    let states: Vec<(String, &str)> = [
        ("Normal", "Normal"),
        ("starting, reexamining", "Starting"),
        ("Switchover", "Switchover"),
        ("a member down", "ActiveDown"),
        ("BothDown, Failed", "BothDown"),
        ("ManualInterventionRequired", "ManualInterventionRequired"),
        ("stopped", "Stopped"),
        ("operator down", "operator down"),
    ]
    .iter()
    .map(|(label, state)| ((*label).to_owned(), state_colours(state).0))
    .collect();
    let marks: Vec<(String, &str)> = vec![
        ("fault (bar: its duration)".to_owned(), FAULT_COLOUR),
        ("user action".to_owned(), ACTION_COLOUR),
        ("violation".to_owned(), VIOLATION_COLOUR),
    ];
    let rows = [
        ("role", role_items),
        ("health", health_items),
        ("state", states),
        ("marks", marks),
    ];
    for (index, (title, items)) in rows.iter().enumerate() {
        legend_row(svg, top + 18.0 * index as f64, title, items);
    }
}

const HEALTHS: [Health; 8] = [
    Health::Healthy,
    Health::CatchingUp,
    Health::Starting,
    Health::Degraded,
    Health::Unknown,
    Health::Down,
    Health::Gone,
    Health::Lost,
];

fn legend_row(svg: &mut String, top: f64, title: &str, items: &[(String, &str)]) {
    let _ = writeln!(
        svg,
        "<text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#424242\">{title}</text>",
        LEFT - 8.0,
        top + 10.0
    );
    let mut x = LEFT;
    for (label, colour) in items {
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"14\" height=\"12\" fill=\"{colour}\" \
             stroke=\"#757575\" stroke-width=\"0.5\"/>"
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 18.0,
            top + 10.0,
            escape(label)
        );
        x += 18.0 + label_width(label) + 14.0;
    }
}

/// Milliseconds as `m:ss` (minutes keep counting past the hour), with the milliseconds when
/// the time is not a whole second (`0:51.005`): tooltips say exactly when.
pub fn format_clock(ms: u64) -> String {
    let seconds = ms / 1_000;
    let clock = format!("{}:{:02}", seconds / 60, seconds % 60);
    match ms % 1_000 {
        0 => clock,
        rest => {
            let digits = format!("{rest:03}");
            format!("{clock}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// Text for XML content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters, even escaped.
            '\t' | '\n' | '\r' => out.push(' '),
            c if u32::from(c) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}
