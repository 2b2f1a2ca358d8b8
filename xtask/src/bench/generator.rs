//! One stack's load generator: the `loadgen` program (xtask/loadgen), started once and sent
//! one order per round, in JSON lines over its stdin and stdout.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use anyhow::Context;
use loadgen::{Order, Tally};

pub struct Generator {
    child: Child,
    orders: ChildStdin,
    tallies: BufReader<ChildStdout>,
}

impl Generator {
    /// Starts `loadgen` against `api`; returns once it has stored its todos and is ready.
    pub fn start(binaries: &Path, api: &str) -> anyhow::Result<Self> {
        let program = binaries.join("loadgen");
        let mut command = Command::new(&program);
        command.arg(api).stdin(Stdio::piped()).stdout(Stdio::piped());
        crate::processes::die_with_parent(&mut command);
        let mut child =
            command.spawn().with_context(|| format!("cannot start {} (run without --no-build)", program.display()))?;
        let orders = child.stdin.take().context("loadgen's stdin")?;
        let mut tallies = BufReader::new(child.stdout.take().context("loadgen's stdout")?);
        let mut line = String::new();
        tallies.read_line(&mut line).context("waiting for loadgen")?;
        anyhow::ensure!(line.trim() == "ready", "loadgen did not start (see its error above)");
        Ok(Self { child, orders, tallies })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the load `order` asks for and returns what it got back.
    pub fn run(&mut self, order: &Order) -> anyhow::Result<Tally> {
        let mut line = serde_json::to_vec(order)?;
        line.push(b'\n');
        self.orders.write_all(&line).context("sending loadgen its order")?;
        let mut answer = String::new();
        self.tallies.read_line(&mut answer).context("reading loadgen's tally")?;
        serde_json::from_str(&answer).with_context(|| format!("loadgen answered {answer:?} (see its error above)"))
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
