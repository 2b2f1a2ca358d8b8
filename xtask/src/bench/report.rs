//! What the bench found: each setup's rounds summed up, the ratios to tracing off with their
//! spread, the goals, as a Markdown table and as JSON whose fields stay the same from run to run
//! (compare two commits with `jq '.ratios[]' target/bench/bench.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use loadgen::Workload;

use super::Setup;

/// The processes whose CPU time is counted: the two services, the trace store (in B), and the
/// bench itself, which generates the load on the same cores.
pub const PROCESSES: [&str; 4] = ["apiserver", "todomanager", "tracestore", "load"];

/// One round of one setup: a few seconds of load.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    pub requests: u64,
    /// Failed requests by what went wrong (`503`, `connect`, …).
    pub errors: BTreeMap<String, u64>,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time (user + system) per answered request, in µs, for each of [`PROCESSES`]
    /// (0 for a process the setup does not have).
    pub cpu_us_per_request: BTreeMap<&'static str, f64>,
}

impl Round {
    /// The CPU per request of `metric`: a process, or `services` (apiserver + todomanager).
    fn cpu(&self, process: &str) -> f64 {
        match process {
            "services" => self.cpu_us_per_request["apiserver"] + self.cpu_us_per_request["todomanager"],
            process => self.cpu_us_per_request[process],
        }
    }
}

/// One setup under one workload: the medians of its rounds, and the rounds.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub workload: Workload,
    pub setup: Setup,
    pub requests: u64,
    pub errors: u64,
    /// The errors by what went wrong.
    pub error_kinds: BTreeMap<String, u64>,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_us_per_request: BTreeMap<&'static str, f64>,
    pub rounds: Vec<Round>,
}

impl Outcome {
    pub fn of(workload: Workload, setup: Setup, rounds: Vec<Round>) -> Self {
        let median_of = |value: &dyn Fn(&Round) -> f64| median(rounds.iter().map(value).collect());
        Self {
            workload,
            setup,
            requests: rounds.iter().map(|round| round.requests).sum(),
            errors: rounds.iter().flat_map(|round| round.errors.values()).sum(),
            error_kinds: rounds.iter().flat_map(|round| &round.errors).fold(
                BTreeMap::new(),
                |mut kinds, (kind, count)| {
                    *kinds.entry(kind.clone()).or_default() += count;
                    kinds
                },
            ),
            requests_per_second: median_of(&|round| round.requests_per_second),
            p50_ms: median_of(&|round| round.p50_ms),
            p99_ms: median_of(&|round| round.p99_ms),
            cpu_us_per_request: PROCESSES
                .iter()
                .map(|&process| (process, median_of(&|round| round.cpu(process))))
                .collect(),
            rounds,
        }
    }
}

/// A setup against tracing off (A) under one workload: the ratio of each pair of rounds run
/// one after the other, so that the machine's drift cancels out; their median and range.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub workload: Workload,
    /// `B/A` or `C/A`.
    pub of: String,
    /// `requests_per_second`, `p99_ms` or `cpu_us_per_request.<process>` (also `.services`:
    /// apiserver and todomanager together).
    pub metric: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The metrics compared.
const METRICS: [&str; 5] = [
    "cpu_us_per_request.apiserver",
    "cpu_us_per_request.todomanager",
    "cpu_us_per_request.services",
    "requests_per_second",
    "p99_ms",
];

fn metric(round: &Round, metric: &str) -> f64 {
    match metric {
        "requests_per_second" => round.requests_per_second,
        "p99_ms" => round.p99_ms,
        cpu => round.cpu(cpu.trim_start_matches("cpu_us_per_request.")),
    }
}

pub fn ratios(outcomes: &[Outcome]) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    for off in outcomes.iter().filter(|outcome| outcome.setup == Setup::A) {
        for on in outcomes.iter().filter(|outcome| outcome.workload == off.workload && outcome.setup != Setup::A) {
            for name in METRICS {
                let per_round: Vec<f64> = on
                    .rounds
                    .iter()
                    .zip(&off.rounds)
                    .map(|(on, off)| metric(on, name) / metric(off, name))
                    .filter(|ratio| ratio.is_finite())
                    .collect();
                ratios.push(Ratio {
                    workload: off.workload,
                    of: format!("{:?}/A", on.setup),
                    metric: name.to_owned(),
                    min: per_round.iter().copied().fold(f64::NAN, f64::min),
                    max: per_round.iter().copied().fold(f64::NAN, f64::max),
                    median: median(per_round),
                })
            }
        }
    }
    ratios
}

/// Spans that reached B's trace store, per service, against those its answered requests made.
#[derive(Debug, Serialize)]
pub struct Delivered {
    pub delivered: u64,
    pub expected: u64,
}

/// A goal of the tracing-cost work, checked against this run's medians.
#[derive(Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub value: f64,
    pub met: bool,
}

pub fn goals(ratios: &[Ratio], delivered: &BTreeMap<String, Delivered>) -> Vec<Goal> {
    let mut goals = Vec::new();
    let find = |workload: Workload, metric: &str| {
        ratios.iter().find(|ratio| ratio.workload == workload && ratio.of == "B/A" && ratio.metric == metric)
    };
    for workload in [Workload::Read, Workload::Mixed] {
        for process in ["apiserver", "todomanager"] {
            if let Some(ratio) = find(workload, &format!("cpu_us_per_request.{process}")) {
                goals.push(Goal {
                    goal: format!("{} load: CPU per request of {process}, B/A ≤ 1.10", workload.name()),
                    value: ratio.median,
                    met: ratio.median <= 1.10,
                });
            }
        }
    }
    if let Some(ratio) = find(Workload::Mixed, "requests_per_second") {
        goals.push(Goal {
            goal: "mixed load: throughput B/A ≥ 0.95".into(),
            value: ratio.median,
            met: ratio.median >= 0.95,
        });
    }
    if let Some(ratio) = find(Workload::Mixed, "p99_ms") {
        goals
            .push(Goal { goal: "mixed load: p99 B/A ≤ 1.10".into(), value: ratio.median, met: ratio.median <= 1.10 });
    }
    for (service, spans) in delivered {
        let share = spans.delivered as f64 / spans.expected.max(1) as f64;
        goals.push(Goal {
            goal: format!("every span of {service} delivered in B"),
            value: share,
            met: spans.delivered == spans.expected,
        });
    }
    goals
}

/// The report in Markdown: a table per workload, its ratios, the spans delivered, the goals.
pub fn markdown(
    heading: &str,
    outcomes: &[Outcome],
    ratios: &[Ratio],
    delivered: &BTreeMap<String, Delivered>,
    goals: &[Goal],
) -> String {
    let mut text = format!("{heading}\n");
    let mut workloads: Vec<Workload> = outcomes.iter().map(|outcome| outcome.workload).collect();
    workloads.dedup();
    for workload in workloads {
        text.push_str(&format!(
            "\n**{} load** ({}): medians of the rounds; CPU in µs per request.\n\n",
            workload.name(),
            workload.describe()
        ));
        text.push_str("| setup | req/s | p50 ms | p99 ms | CPU apiserver | CPU todomanager | CPU trace store | CPU load generator | errors |\n");
        text.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for outcome in outcomes.iter().filter(|outcome| outcome.workload == workload) {
            let cpu = |process: &str| outcome.cpu_us_per_request[process];
            text.push_str(&format!(
                "| {:?}: {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {} |\n",
                outcome.setup,
                outcome.setup.describe(),
                outcome.requests_per_second,
                outcome.p50_ms,
                outcome.p99_ms,
                cpu("apiserver"),
                cpu("todomanager"),
                cpu("tracestore"),
                cpu("load"),
                outcome.errors,
            ));
        }
        for outcome in outcomes.iter().filter(|outcome| outcome.workload == workload && outcome.errors > 0) {
            let kinds: Vec<String> =
                outcome.error_kinds.iter().map(|(kind, count)| format!("{kind} ×{count}")).collect();
            text.push_str(&format!("\nErrors in {:?}: {}.\n", outcome.setup, kinds.join(", ")));
        }
        for of in ["B/A", "C/A"] {
            let parts: Vec<String> = ratios
                .iter()
                .filter(|ratio| ratio.workload == workload && ratio.of == of)
                .map(|ratio| {
                    let name = ratio
                        .metric
                        .replace("cpu_us_per_request.", "CPU ")
                        .replace("requests_per_second", "throughput");
                    format!("{name} {:.2} [{:.2}–{:.2}]", ratio.median, ratio.min, ratio.max)
                })
                .collect();
            if !parts.is_empty() {
                text.push_str(&format!("\n{of} (median [range] of the rounds): {}.\n", parts.join(", ")));
            }
        }
    }
    if !delivered.is_empty() {
        let parts: Vec<String> = delivered
            .iter()
            .map(|(service, spans)| format!("{service} {}/{}", spans.delivered, spans.expected))
            .collect();
        text.push_str(&format!("\nSpans delivered in B (received by the store / expected): {}.\n", parts.join(", ")));
    }
    text.push_str("\nGoals (medians of this run, not assertions):\n\n");
    for goal in goals {
        text.push_str(&format!("- {} {}: {:.3}\n", if goal.met { "✔" } else { "✘" }, goal.goal, goal.value));
    }
    text
}

/// The middle value (the mean of the two middle ones for an even count); NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|value| value.is_finite());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(rps: f64, apiserver: f64) -> Round {
        Round {
            requests: 100,
            errors: BTreeMap::new(),
            requests_per_second: rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            cpu_us_per_request: PROCESSES
                .iter()
                .map(|&process| (process, if process == "apiserver" { apiserver } else { 10.0 }))
                .collect(),
        }
    }

    #[test]
    fn medians_take_the_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn ratios_pair_the_rounds_run_together() {
        // The machine slows down from round to round; the pairwise ratio stays 1.5 regardless.
        let off =
            Outcome::of(Workload::Read, Setup::A, vec![round(1000.0, 100.0), round(500.0, 200.0), round(250.0, 400.0)]);
        let on =
            Outcome::of(Workload::Read, Setup::B, vec![round(900.0, 150.0), round(450.0, 300.0), round(225.0, 600.0)]);
        let ratios = ratios(&[off, on]);
        let cpu = ratios.iter().find(|ratio| ratio.metric == "cpu_us_per_request.apiserver").unwrap();
        assert_eq!((cpu.of.as_str(), cpu.median, cpu.min, cpu.max), ("B/A", 1.5, 1.5, 1.5));
        let services = ratios.iter().find(|ratio| ratio.metric == "cpu_us_per_request.services").unwrap();
        // Per round (150 + 10) / (100 + 10), 310 / 210, 610 / 410: the middle one.
        assert!((services.median - 310.0 / 210.0).abs() < 1e-9, "{services:?}");
        let throughput = ratios.iter().find(|ratio| ratio.metric == "requests_per_second").unwrap();
        assert!((throughput.median - 0.9).abs() < 1e-9);

        let goals =
            goals(&ratios, &BTreeMap::from([("apiserver".to_owned(), Delivered { delivered: 9, expected: 10 })]));
        let read_cpu = goals.iter().find(|goal| goal.goal.contains("read load: CPU per request of apiserver")).unwrap();
        assert!(!read_cpu.met && (read_cpu.value - 1.5).abs() < 1e-9);
        assert!(!goals.iter().find(|goal| goal.goal.contains("delivered")).unwrap().met);
    }
}
