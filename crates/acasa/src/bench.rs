//! Benchmarks (placeholder).
use acasa_runtime::Config;
/// Benchmark arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    json: bool,
}
pub async fn run(_c: &Config, _a: Args) -> anyhow::Result<()> {
    let _ = _a.json;
    Ok(())
}
