//! `cargo xtask bench --instructions`: what tracing costs in instructions per request, counted
//! exactly by valgrind's callgrind, whatever else the machine does. Slow (a service under
//! callgrind runs some fifty times slower) but it holds still where CPU time does not, and
//! callgrind's output file says where the instructions go (`callgrind_annotate --inclusive=yes`).
//!
//! For each workload, setup and service: the stack is started with that one service under
//! callgrind, warmed up, its counters zeroed (`callgrind_control --zero`), loaded, and dumped
//! (`callgrind_control --dump`); the count is divided by the requests it answered.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use loadgen::{Order, Workload};
use serde::Serialize;

use super::{Options, Setup, Stack};
use crate::local::Under;

/// The services measured.
const SERVICES: [&str; 2] = ["apiserver", "todomanager"];

/// One service's count under one setup and workload.
#[derive(Debug, Serialize)]
pub struct Count {
    pub workload: Workload,
    pub setup: Setup,
    pub process: &'static str,
    pub requests: u64,
    pub instructions_per_request: u64,
    /// callgrind's output, for `callgrind_annotate` (kept under the output folder).
    pub callgrind_out: String,
}

pub fn run(
    options: &Options,
    binaries: &Path,
    setups: &[Setup],
    workloads: &[Workload],
    out: &Path,
) -> anyhow::Result<Vec<Count>> {
    let valgrind = on_path("valgrind")
        .context("valgrind is not installed (e.g. `apt-get install valgrind`); --instructions needs its callgrind")?;
    let mut counts = Vec::new();
    for &workload in workloads {
        for &setup in setups {
            for process in SERVICES {
                let count = measure(options, binaries, &valgrind, (setup, workload, process), out)?;
                println!(
                    "{} load, {setup:?}, {process}: {} instructions per request ({} requests)",
                    workload.name(),
                    count.instructions_per_request,
                    count.requests
                );
                counts.push(count);
            }
        }
    }
    Ok(counts)
}

fn measure(
    options: &Options,
    binaries: &Path,
    valgrind: &Path,
    (setup, workload, process): (Setup, Workload, &'static str),
    out: &Path,
) -> anyhow::Result<Count> {
    let callgrind_out = out.join(format!("callgrind.{}.{setup:?}.{process}", workload.name()));
    let arguments = ["--tool=callgrind".to_owned(), format!("--callgrind-out-file={}", callgrind_out.display())];
    let under =
        Under { service: process, program: valgrind.to_str().context("valgrind's path")?, args: &arguments[..] };
    let mut stack = Stack::start(setup, binaries, Some(under))
        .with_context(|| format!("cannot start the stack of setup {setup:?} with {process} under callgrind"))?;
    let pid =
        stack.services.iter().find(|service| service.name == process).context("the service under callgrind")?.pid();
    let order = |duration| Order { workload, concurrency: options.concurrency, rate: options.rate, duration };
    stack.generator.run(&order(options.warmup))?;
    let callgrind_control = |what: &str| {
        duct::cmd!("callgrind_control", what, pid.to_string())
            .stdout_null()
            .run()
            .with_context(|| format!("callgrind_control {what} {pid} failed"))
    };
    callgrind_control("--zero")?;
    let tally = stack.generator.run(&order(options.duration))?;
    callgrind_control("--dump")?;
    stack.services.check_running()?;
    // A dump on request goes to `<out file>.1`.
    let dumped = std::path::PathBuf::from(format!("{}.1", callgrind_out.display()));
    let instructions = total(&dumped)?;
    Ok(Count {
        workload,
        setup,
        process,
        requests: tally.answered,
        instructions_per_request: instructions / tally.answered.max(1),
        callgrind_out: dumped.display().to_string(),
    })
}

/// Where `program` is found on the PATH.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|path| path.is_file())
}

/// The total of instructions in a callgrind output file (its `summary:` or `totals:` line).
fn total(file: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(file).with_context(|| format!("no callgrind output in {}", file.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")))
        .and_then(|count| count.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{} has no instruction total", file.display()))
}

/// The counts as a Markdown table per workload, with the ratios to tracing off.
pub fn markdown(heading: &str, counts: &[Count]) -> String {
    let mut text = format!("{heading}\n");
    let mut workloads: Vec<Workload> = counts.iter().map(|count| count.workload).collect();
    workloads.dedup();
    for workload in workloads {
        text.push_str(&format!(
            "\n**{} load** ({}): instructions per request, counted by callgrind.\n\n| setup | apiserver | todomanager |\n| --- | ---: | ---: |\n",
            workload.name(),
            workload.describe()
        ));
        let of = |setup: Setup| -> BTreeMap<&str, u64> {
            counts
                .iter()
                .filter(|count| count.workload == workload && count.setup == setup)
                .map(|count| (count.process, count.instructions_per_request))
                .collect()
        };
        let off = of(Setup::A);
        for setup in [Setup::A, Setup::B, Setup::C] {
            let row = of(setup);
            if row.is_empty() {
                continue;
            }
            let cell = |process: &str| match (row.get(process), off.get(process)) {
                (Some(count), Some(base)) if setup != Setup::A => {
                    format!("{count} ({:.2}×)", *count as f64 / *base as f64)
                }
                (Some(count), _) => count.to_string(),
                _ => "?".into(),
            };
            text.push_str(&format!(
                "| {setup:?}: {} | {} | {} |\n",
                setup.describe(),
                cell("apiserver"),
                cell("todomanager")
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_read_from_the_summary_or_totals_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callgrind.out.1");
        std::fs::write(&file, "version: 1\ncmd: apiserver\nevents: Ir\nsummary: 394033844\n").unwrap();
        assert_eq!(total(&file).unwrap(), 394_033_844);
        std::fs::write(&file, "events: Ir\ntotals: 12 \n").unwrap();
        assert_eq!(total(&file).unwrap(), 12);
        std::fs::write(&file, "events: Ir\n").unwrap();
        assert!(total(&file).is_err());
    }
}
