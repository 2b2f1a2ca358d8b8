//! `loadgen API_URL`: stores the todos the read workload reads, says `ready`, then for each
//! [`loadgen::Order`] read from stdin (one JSON object per line) sends that load and writes a
//! [`loadgen::Tally`] to stdout (one line). It ends when stdin does. Started by `cargo xtask
//! bench`, not by hand.

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let api = std::env::args().nth(1).context("usage: loadgen API_URL (started by `cargo xtask bench`)")?;
    let target = loadgen::Target::prepare(&api).await?;
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;
    let mut orders = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = orders.next_line().await? {
        let order: loadgen::Order = serde_json::from_str(&line).with_context(|| format!("not an order: {line}"))?;
        let tally = target.load(&order).await;
        let mut answer = serde_json::to_vec(&tally)?;
        answer.push(b'\n');
        stdout.write_all(&answer).await?;
        stdout.flush().await?;
    }
    Ok(())
}
