use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use streamwatch::app::reload::ReloadSource;
use streamwatch::app::shard::{self, Shard, ShardError};
use streamwatch::app::{bench, run, scan};
use streamwatch::config::{self, AnalysisTier, Config, StreamConfig};
use streamwatch::ingest;
use streamwatch::stats::BackendChoice;
use streamwatch::stats::gpu;

#[derive(Parser)]
#[command(
    name = "streamwatch",
    version,
    about = "GPU-accelerated real-time monitor for live video streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Monitor streams until stopped (SIGINT/SIGTERM), serving metrics and the API; SIGHUP
    /// re-reads --config and applies the changed streams.
    Run(RunArgs),
    /// Analyse a file to its end (or a live URL for --duration seconds) and print its defects.
    Scan(ScanArgs),
    /// Monitor the built-in demo channel (scheduled black, freeze and silence), serving metrics.
    Demo(DemoArgs),
    /// Check a configuration file and print the effective settings.
    CheckConfig { file: PathBuf },
    /// Measure the engine (synthetic frames) or the whole ingest path (a file or URL) with N
    /// streams: frames/s, time per stage, CPU, memory, batch sizes, latency, drops.
    Bench(BenchArgs),
}

#[derive(Args)]
struct RunArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// HTTP address (overrides the config's `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Statistics backend (overrides the config's `backend`).
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// Log line format on stdout.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Monitor only shard INDEX of COUNT (0-based, e.g. `1/3`) of the stream list: COUNT
    /// copies given the same list each take a disjoint share (rendezvous hashing of ids).
    #[arg(
        long,
        value_name = "INDEX/COUNT",
        conflicts_with = "shard_from_hostname"
    )]
    shard: Option<Shard>,
    /// Take the shard index from the hostname's ordinal (`streamwatch-2` → 2), as in a
    /// Kubernetes StatefulSet; the count comes from --shard-count or STREAMWATCH_SHARD_COUNT.
    #[arg(long)]
    shard_from_hostname: bool,
    /// Number of shards for --shard-from-hostname.
    #[arg(long, value_name = "COUNT", requires = "shard_from_hostname")]
    shard_count: Option<String>,
    /// Stream URLs (or file paths) to monitor besides those in the config.
    urls: Vec<String>,
}

#[derive(Args)]
struct ScanArgs {
    /// URL or file path.
    source: String,
    /// Media seconds to analyse (needed for live sources that never end), 0.1 to 86400.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true, value_parser = parse_seconds)]
    duration: Option<f64>,
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// TOML configuration file (its detector settings are used).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// Also write every frame's statistics to this CSV file (for tuning thresholds).
    #[arg(long)]
    frame_stats: Option<PathBuf>,
    /// MPEG-TS program number to analyse (default: the first program with video).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    program: Option<u16>,
    /// Analysis tier (default: the config's `ingest.analysis`, else full).
    #[arg(long, value_enum)]
    analysis: Option<AnalysisTier>,
}

#[derive(Args)]
struct DemoArgs {
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Args)]
struct BenchArgs {
    /// Simultaneous streams (1 to 4096).
    #[arg(long, default_value_t = 4, allow_hyphen_values = true,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    streams: u16,
    /// `synthetic` (frames generated in memory: the engine alone), a file path or a URL
    /// (one GStreamer pipeline per stream, as `run` builds them).
    #[arg(long, default_value = "synthetic")]
    source: String,
    /// Frame size of synthetic frames, WIDTHxHEIGHT (each 16 to 8192).
    #[arg(long, default_value = "1280x720", value_parser = parse_resolution)]
    resolution: (u32, u32),
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// Seconds measured (after a warm-up of up to 1 s), 0.1 to 86400.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", allow_hyphen_values = true,
          value_parser = parse_seconds)]
    duration: f64,
    /// Synthetic frames per second per stream, 0.1 to 1000 (0: as fast as the engine takes
    /// them).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = parse_fps)]
    fps: f64,
    /// Files: play in real time like live streams, dropping frames when the engine falls
    /// behind (default: as fast as decoding allows, dropping nothing). Network URLs are
    /// always real time.
    #[arg(long)]
    realtime: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// TOML configuration file (its detector, ingest and engine settings are used).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Analysis tier of every stream (default: the config's `ingest.analysis`, else full).
    #[arg(long, value_enum)]
    analysis: Option<AnalysisTier>,
    /// Also measure the GPU adapter's host-to-device bandwidth (2 s, after the run) and the
    /// share of it the engine's uploads took.
    #[arg(long)]
    bandwidth: bool,
}

/// `--duration`: a finite number of seconds within bench's bounds (the same for scan), so
/// that no later `Duration` conversion can overflow.
fn parse_seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if (bench::MIN_SECONDS..=bench::MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v:?} s is out of range: use {} to {} seconds",
            bench::MIN_SECONDS,
            bench::MAX_SECONDS
        ))
    }
}

fn parse_fps(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a frame rate"))?;
    if v == 0.0 || (bench::MIN_FPS..=bench::MAX_FPS).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v:?} is out of range: use 0 (as fast as possible) or {} to {} frames per second",
            bench::MIN_FPS,
            bench::MAX_FPS
        ))
    }
}

fn parse_resolution(text: &str) -> Result<(u32, u32), String> {
    bench::parse_resolution(text).map_err(|e| e.to_string())
}

/// Stdout was closed by its reader (`streamwatch check-config x | head`): not a failure of
/// streamwatch, so the process ends quietly with status 0.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
struct StdoutClosed;

/// Writes to stdout without `print!`'s panic on a closed pipe.
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

fn init_logging(format: LogFormat, to_stderr: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = if to_stderr {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let result = match (format, to_stderr) {
        (LogFormat::Json, false) => builder.json().with_current_span(false).try_init(),
        (LogFormat::Json, true) => builder
            .json()
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Text, false) => builder.try_init(),
        (LogFormat::Text, true) => builder.with_writer(std::io::stderr).try_init(),
    };
    if let Err(e) = result {
        eprintln!("streamwatch: cannot set up logging: {e}");
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    pin_malloc_mmap_threshold();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) if e.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is a closed pipe too.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("streamwatch: error: {e:#}\n").as_bytes(),
            );
            ExitCode::from(2)
        }
    }
}

/// Decoded frames (1.4 MB at 720p) are allocated outside GStreamer's pools too, by the
/// decoders. glibc raises its mmap threshold to the size of each such block freed, after
/// which frames come from the thread arenas and their freed pages stay resident: pinning the
/// threshold at glibc's default cut RSS per stream from 8.4 to 5.6 MiB in the keyframes tier
/// and from 14.5 to 9.8 MiB in the full tier, at no measurable CPU cost. An operator's
/// `MALLOC_MMAP_THRESHOLD_` still wins.
fn pin_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        const GLIBC_DEFAULT_MMAP_THRESHOLD: libc::c_int = 128 * 1024;
        // SAFETY: called first in main, before any other thread exists or allocates.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, GLIBC_DEFAULT_MMAP_THRESHOLD) };
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Scan(args) => scan_command(args),
        Command::Bench(args) => bench_command(args),
        Command::Run(args) => run_command(args),
        Command::Demo(args) => demo_command(args),
    }
}

fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    let mut text = format!(
        "{}: ok ({} streams, listen {}, backend {:?})\n",
        file.display(),
        config.streams.len(),
        config.listen,
        config.backend
    );
    for s in &config.streams {
        text.push_str(&format!(
            "  {} {} {:?}\n",
            s.id,
            config::redact_url(&s.url),
            s.detectors
        ));
    }
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn scan_command(args: ScanArgs) -> anyhow::Result<ExitCode> {
    init_logging(LogFormat::Text, true);
    let mut config = load_config(args.config.as_ref())?;
    config.ingest.analysis = args.analysis.unwrap_or(config.ingest.analysis);
    let url = config::source_to_url(&args.source).map_err(anyhow::Error::msg)?;
    let backend = gpu::create_backend(args.backend.unwrap_or(config.backend))?;
    let source = scan::ScanSource {
        url: &url,
        program: args.program,
    };
    let report = scan::scan(
        source,
        args.duration,
        &config,
        backend,
        args.frame_stats.as_deref(),
    )?;
    match args.format {
        ReportFormat::Json => out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
        ReportFormat::Text => out(&report.to_text())?,
    }
    Ok(if report.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How long `bench --bandwidth` uploads.
const BANDWIDTH_SPAN: std::time::Duration = std::time::Duration::from_secs(2);

fn bench_command(args: BenchArgs) -> anyhow::Result<ExitCode> {
    init_logging(LogFormat::Text, true);
    let mut config = load_config(args.config.as_ref())?;
    config.ingest.analysis = args.analysis.unwrap_or(config.ingest.analysis);
    let (width, height) = args.resolution;
    let options = bench::BenchOptions {
        streams: usize::from(args.streams),
        source: args.source,
        width,
        height,
        duration: args.duration,
        fps: args.fps,
        realtime: args.realtime,
    };
    let backend = gpu::create_backend(args.backend.unwrap_or(config.backend))?;
    let mut report = bench::bench(&options, &config, backend)?;
    if args.bandwidth {
        let measured = gpu::bandwidth::host_to_device(BANDWIDTH_SPAN)?;
        report.set_bandwidth(measured.bytes_per_second);
    }
    if let Some(path) = args.json {
        report.write_json(&path)?;
    }
    out(&report.to_text())?;
    // A stream whose pipeline or feeder failed was not measured: the figures are partial.
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format, false);
    let reload_path = args.config.clone();
    let mut config = load_config(args.config.as_ref())?;
    let cli_streams = add_cli_streams(&mut config, &args.urls)?;
    config.validate()?;
    let shard = match (args.shard, args.shard_from_hostname) {
        (Some(s), _) => Some(s),
        (None, true) => Some(shard_from_host(args.shard_count.as_deref())?),
        (None, false) => None,
    };
    if let Some(shard) = shard {
        apply_shard(&mut config, shard)?;
    }
    let reload = reload_path.map(|path| ReloadSource {
        path,
        cli_streams,
        shard,
        listen: args.listen,
        backend: args.backend,
    });
    monitor(config, args.listen, args.backend, reload)
}

/// Appends a stream per command-line URL, with the config's detector and decoder settings;
/// returns them, since a reload must add them to the re-read config again.
fn add_cli_streams(config: &mut Config, urls: &[String]) -> anyhow::Result<Vec<StreamConfig>> {
    let base = config.streams.len();
    for (i, source) in urls.iter().enumerate() {
        let url = config::source_to_url(source).map_err(anyhow::Error::msg)?;
        let stream = config.stream_with_defaults(config::id_from_url(&url, base + i), url);
        config.streams.push(stream);
    }
    Ok(config.streams[base..].to_vec())
}

fn demo_command(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format, false);
    let mut config = Config::default();
    let demo = config.stream_with_defaults("demo".into(), "demo://".into());
    config.streams.push(demo);
    let (b, f, s) = (
        ingest::demo::BLACK,
        ingest::demo::FREEZE,
        ingest::demo::SILENCE,
    );
    // Monitoring goes on without a reader of stdout (the metrics and the API remain).
    let _ = out(&format!(
        "streamwatch demo: a synthetic live channel with black at {}-{} s, a freeze at {}-{} s \
         and silence at {}-{} s of every {} s; defects are reported {} s after they start.\n",
        b.0,
        b.1,
        f.0,
        f.1,
        s.0,
        s.1,
        ingest::demo::CYCLE,
        config.detectors.black.min_duration
    ));
    monitor(config, args.listen, args.backend, None)
}

/// The shard named by this machine's hostname ordinal; the count from `--shard-count`, else
/// from the environment (where a StatefulSet puts it beside `replicas`).
fn shard_from_host(count: Option<&str>) -> anyhow::Result<Shard> {
    let count = match count {
        Some(c) => shard::parse_count(c)?,
        None => match std::env::var(shard::SHARD_COUNT_ENV) {
            Ok(c) => shard::parse_count(&c).with_context(|| {
                format!("in the environment variable {}", shard::SHARD_COUNT_ENV)
            })?,
            Err(_) => return Err(ShardError::MissingCount.into()),
        },
    };
    // Kubernetes sets HOSTNAME to the pod name; elsewhere (systemd) it is usually unexported,
    // so the kernel's hostname is the fallback.
    let hostname = match std::env::var("HOSTNAME") {
        Ok(h) if !h.trim().is_empty() => h,
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("cannot read the hostname from /proc/sys/kernel/hostname")?,
    };
    Ok(Shard::from_hostname(hostname.trim(), count)?)
}

/// Keeps only the streams this shard owns, and says which they are.
fn apply_shard(config: &mut Config, shard: Shard) -> anyhow::Result<()> {
    let total = config.streams.len();
    config.streams.retain(|s| shard.owns(&s.id));
    let owned: Vec<&str> = config.streams.iter().map(|s| s.id.as_str()).collect();
    tracing::info!(
        shard = %shard,
        owned = owned.len(),
        total,
        streams = ?owned,
        "shard {shard} monitors {} of {total} streams",
        owned.len()
    );
    if owned.is_empty() {
        // `run` refuses an empty stream list; say why this one is empty rather than leave the
        // generic "no streams" error.
        anyhow::bail!(
            "shard {shard} owns none of the {total} streams: use fewer shards than streams"
        );
    }
    Ok(())
}

fn monitor(
    mut config: Config,
    listen: Option<SocketAddr>,
    backend: Option<BackendChoice>,
    reload: Option<ReloadSource>,
) -> anyhow::Result<ExitCode> {
    if let Some(l) = listen {
        config.listen = l;
    }
    let backend = gpu::create_backend(backend.unwrap_or(config.backend))?;
    // A closed stdout loses the banner and the event lines, never the monitoring.
    let _ = out(&format!(
        "streamwatch: statistics on {}\nstreamwatch: metrics on http://{}/metrics, streams on http://{}/api/streams\n",
        backend.describe(),
        config.server.metrics_listen.unwrap_or(config.listen),
        config.listen
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let result = runtime.block_on(run::run_with_reload(config, backend, reload));
    // A pipeline abandoned in a GStreamer deadlock keeps its blocking thread forever; the
    // runtime would wait for it on drop, and the process would never exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result?;
    Ok(ExitCode::SUCCESS)
}
