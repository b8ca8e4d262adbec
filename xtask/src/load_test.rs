//! `cargo xtask load-test`: starts the release service on loopback with the
//! example plugins and drives it with wrk (installed with apt-get when
//! missing), for a bounded time per case: `/healthz` as the no-plugin
//! baseline, `process(21)` through `call` (a stateless module), `next()` of
//! `counter` through `call` (it writes memory, so every call gets a fresh
//! instance), and `upper` through `invoke`. Beside wrk's figures it reads
//! the service's own CPU time (user and system, from `/proc/<pid>/stat`)
//! around each run: the CPU each request costs the service, which wrk
//! sharing the cores disturbs less than throughput.
//!
//! Beside the service it runs the HTTP floor
//! (`crates/wasmplug-server/examples/http_floor.rs`): the service's own
//! serving code with routes that do no plugin work. Its rows show what a
//! POST with a body costs before any plugin work, against the floor's own
//! `/healthz`: the ceiling for the `call` route's ratio.

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

use crate::service::Service;

/// One wrk run's figures.
pub struct Figures {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// How many requests wrk completed.
    pub requests: u64,
    /// The service's CPU time per request, user and system, in µs.
    pub user_us: f64,
    pub system_us: f64,
}

impl Figures {
    fn cpu_us(&self) -> f64 {
        self.user_us + self.system_us
    }
}

/// Runs the load test and returns its results as a markdown section.
pub fn run(sh: &Shell, seconds: u64, connections: u32) -> anyhow::Result<String> {
    ensure_wrk(sh)?;
    let plugins = tempfile::tempdir()?;
    for name in ["process", "upper", "counter"] {
        std::fs::copy(
            crate::plugins_out_dir().join(format!("{name}.wasm")),
            plugins.path().join(format!("{name}.wasm")),
        )?;
    }
    let server = Service::start(sh, plugins.path(), &["--max-concurrent-calls", "256"], &[])?;

    let scripts = tempfile::tempdir()?;
    let call = Post::new(scripts.path(), "call", r#"{"args":[21]}"#, true)?;
    let counter = Post::new(scripts.path(), "counter", r#"{"args":[]}"#, true)?;
    let invoke = Post::new(scripts.path(), "invoke", "hello, wasmplug", false)?;

    let floor = Service::start_http_floor(sh)?;
    let (base, floor_base) = (server.base_url(), floor.base_url());
    let (cpu, floor_cpu) = (ServiceCpu::new(sh, server.pid())?, ServiceCpu::new(sh, floor.pid())?);
    let case = |label, url, post, cpu, baseline| Case {
        label,
        url,
        post,
        cpu,
        baseline,
    };
    let cases = [
        case(
            "GET /healthz (no plugin, baseline)",
            format!("{base}/healthz"),
            None,
            &cpu,
            0,
        ),
        case(
            "POST call process(21)",
            format!("{base}/v1/plugins/process/call/process"),
            Some(&call),
            &cpu,
            0,
        ),
        case(
            "POST call counter next() (writes memory: a fresh instance per call)",
            format!("{base}/v1/plugins/counter/call/next"),
            Some(&counter),
            &cpu,
            0,
        ),
        case(
            "POST invoke upper (15 bytes)",
            format!("{base}/v1/plugins/upper/invoke/upper"),
            Some(&invoke),
            &cpu,
            0,
        ),
        case(
            "floor: GET /healthz (the floor's baseline)",
            format!("{floor_base}/healthz"),
            None,
            &floor_cpu,
            FLOOR,
        ),
        case(
            "floor: POST with `call`'s body, not read",
            format!("{floor_base}/discard"),
            Some(&call),
            &floor_cpu,
            FLOOR,
        ),
        case(
            "floor: POST with `call`'s body, read",
            format!("{floor_base}/read"),
            Some(&call),
            &floor_cpu,
            FLOOR,
        ),
        case(
            "floor: POST with `call`'s body, read, and two path parameters (`call`'s route without the plugin work)",
            format!("{floor_base}/read/process/process"),
            Some(&call),
            &floor_cpu,
            FLOOR,
        ),
    ];
    // The machine's speed drifts from second to second, so the cases take
    // turns: a discarded warm-up round, then ROUNDS rounds of every case.
    // Each case's figures are the median over rounds, and its ratio to its
    // server's /healthz is the median of the ratios within each round.
    let round_seconds = (seconds / ROUNDS).max(1);
    let agent = xtask::loopback_agent(std::time::Duration::from_secs(10));
    for case in &cases {
        check_answer(&agent, case)?;
        wrk(sh, case, 1, connections)?;
    }
    let mut rounds: Vec<Vec<Figures>> = Vec::new();
    for round in 1..=ROUNDS {
        let mut figures = Vec::new();
        for case in &cases {
            let run = wrk(sh, case, round_seconds, connections)?;
            eprintln!(
                "round {round}/{ROUNDS} {}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors, \
                 server CPU {:.2} µs/request ({:.2} user, {:.2} system)",
                case.label,
                run.requests_per_second,
                run.p50_ms,
                run.p99_ms,
                run.errors,
                run.cpu_us(),
                run.user_us,
                run.system_us
            );
            figures.push(run);
        }
        rounds.push(figures);
    }
    drop(server);
    drop(floor);

    let header =
        "| case | requests/s | vs /healthz | p50 | p99 | p99 vs /healthz | server CPU per request (user + system) \
                  | CPU vs /healthz | errors |\n|---|---|---|---|---|---|---|---|---|\n";
    let mut out = format!(
        "## HTTP load test\n\n`cargo xtask load-test`: wrk, {connections} connections, 2 threads, against the release \
         service on loopback (both share this machine's cores). The cases take turns: {ROUNDS} rounds of {round_seconds} s \
         each after a warm-up round; figures are medians over the rounds, and each ratio is the median of each round's \
         ratio to that round's `/healthz` (throughput, and p99: wrk shares the cores with the service, so p99 is \
         mostly scheduling, which the ratio takes out). Server CPU is the server process's own CPU time per request \
         (user + system, read from `/proc/<pid>/stat` before and after each run, divided by the requests wrk \
         completed), with its ratio to `/healthz`'s taken the same way.\n\n{header}"
    );
    // A case's table row, and its p99 ratio.
    let row = |index: usize| -> anyhow::Result<(String, f64)> {
        let Case { label, baseline, .. } = &cases[index];
        let of_case = |field: fn(&Figures) -> f64| median(rounds.iter().map(|round| field(&round[index])));
        let (rate, p50, p99) = (
            of_case(|figures| figures.requests_per_second)?,
            of_case(|figures| figures.p50_ms)?,
            of_case(|figures| figures.p99_ms)?,
        );
        let ratio = 100.0 * ratio_between(&rounds, index, *baseline, |figures| figures.requests_per_second)?;
        let p99_ratio = ratio_between(&rounds, index, *baseline, |figures| figures.p99_ms)?;
        let (user, system) = (
            of_case(|figures| figures.user_us)?,
            of_case(|figures| figures.system_us)?,
        );
        let cpu_ratio = ratio_between(&rounds, index, *baseline, Figures::cpu_us)?;
        let errors: u64 = rounds.iter().map(|round| round[index].errors).sum();
        eprintln!(
            "{label}: {rate:.0} req/s ({ratio:.0}% of its /healthz), p50 {p50:.3} ms, p99 {p99:.3} ms \
             ({p99_ratio:.2}x /healthz's), server CPU {user:.2} + {system:.2} µs/request \
             ({cpu_ratio:.2}x /healthz's), {errors} errors"
        );
        let line = format!(
            "| {label} | {rate:.0} | {ratio:.0}% | {p50:.3} ms | {p99:.3} ms | {p99_ratio:.2}x | \
             {user:.2} + {system:.2} µs | {cpu_ratio:.2}x | {errors} |\n"
        );
        Ok((line, p99_ratio))
    };
    let mut worst_p99_ratio: f64 = 0.0;
    for index in 0..FLOOR {
        let (line, p99_ratio) = row(index)?;
        out.push_str(&line);
        worst_p99_ratio = worst_p99_ratio.max(p99_ratio);
    }
    out.push_str(&format!(
        "\nThe HTTP floor (`crates/wasmplug-server/examples/http_floor.rs`) is the service's own serving code \
         (`wasmplug_server::serve_router`, and `read_body` for bodies) with routes that do no plugin work, run beside \
         the service in the same rounds. Its ratios are to its own `/healthz`: what HTTP alone costs a request shaped \
         like `call`'s, before the plugin lookup, the JSON arguments, the call and the JSON answer.\n\n{header}"
    ));
    for index in FLOOR..cases.len() {
        out.push_str(&row(index)?.0);
    }
    let call_ratio = 100.0 * ratio_between(&rounds, CALL, 0, |figures| figures.requests_per_second)?;
    let floor_ratio = 100.0 * ratio_between(&rounds, FLOOR_CALL, FLOOR, |figures| figures.requests_per_second)?;
    let plugin_share = 100.0 * ratio_between(&rounds, CALL, FLOOR_CALL, |figures| figures.requests_per_second)?;
    out.push_str(&format!(
        "\nWithout any plugin work, `call`'s route shape runs at {floor_ratio:.0}% of `/healthz` on this serving code; \
         `call` itself keeps {plugin_share:.0}% of that floor's throughput (median of the per-round ratios).\n"
    ));
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    out.push_str(&format!(
        "\nTargets (median of the per-round ratios): `call` at least 80% of `/healthz` throughput: {call_ratio:.0}%, \
         **{}**; every case's p99 at most 1.2x `/healthz`'s p99: at most {worst_p99_ratio:.2}x, **{}**.\n",
        verdict(call_ratio >= 80.0),
        verdict(worst_p99_ratio <= 1.2),
    ));
    Ok(out)
}

/// A route of one server, measured with wrk, and the case its ratios are
/// taken against: that server's `/healthz`.
struct Case<'a> {
    label: &'static str,
    url: String,
    /// The POST wrk sends; a GET without one.
    post: Option<&'a Post>,
    /// The CPU time of the process that serves `url`.
    cpu: &'a ServiceCpu,
    baseline: usize,
}

/// A POST's body, and the wrk script that sends it.
struct Post {
    body: &'static str,
    json: bool,
    script: std::path::PathBuf,
}

impl Post {
    /// Writes `<dir>/<name>.lua`, which makes wrk POST `body` (as JSON when
    /// `json`).
    fn new(dir: &std::path::Path, name: &str, body: &'static str, json: bool) -> anyhow::Result<Post> {
        let script = dir.join(format!("{name}.lua"));
        let header = if json {
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
        } else {
            ""
        };
        std::fs::write(&script, format!("wrk.method = \"POST\"\nwrk.body = '{body}'\n{header}"))?;
        Ok(Post { body, json, script })
    }
}

/// Sends `case`'s request once and requires `200 OK`: no case is timed
/// while it answers an error (a `404` is quick, and would pass for a fast
/// route).
fn check_answer(agent: &ureq::Agent, case: &Case<'_>) -> anyhow::Result<()> {
    let response = match case.post {
        None => agent.get(&case.url).call(),
        Some(post) if post.json => agent
            .post(&case.url)
            .header("Content-Type", "application/json")
            .send(post.body),
        Some(post) => agent.post(&case.url).send(post.body),
    }
    .with_context(|| format!("cannot reach {}", case.url))?;
    let status = response.status();
    if status != 200 {
        let body = response.into_body().read_to_string().unwrap_or_default();
        bail!("{} answered {status} before timing: {body}", case.url);
    }
    Ok(())
}

/// The index of `POST call process(21)` in the cases, the one with a
/// throughput target.
const CALL: usize = 1;

/// The index of the floor's `/healthz`: the floor's cases start here.
const FLOOR: usize = 4;

/// The index of the floor's route shaped like `call`'s.
const FLOOR_CALL: usize = 7;

/// How many times each case runs; see [`run`]. Per-round ratios on this
/// shared 2-core machine swing by ±10% from round to round (the VM's
/// neighbours, and wrk preempting the service), so there are many short
/// rounds rather than a few long ones: one bad round moves a median of nine
/// less than a median of five.
const ROUNDS: u64 = 9;

/// The median over rounds of case `index`'s `field` divided by the same
/// round's figure for case `baseline`. Rounds whose baseline figure is 0
/// are left out; with none left it is an error, not a ratio.
fn ratio_between(
    rounds: &[Vec<Figures>],
    index: usize,
    baseline: usize,
    field: fn(&Figures) -> f64,
) -> anyhow::Result<f64> {
    median(
        rounds
            .iter()
            .filter(|round| field(&round[baseline]) > 0.0)
            .map(|round| field(&round[index]) / field(&round[baseline])),
    )
}

/// The median of `values` (the mean of the middle two for an even count);
/// an error when there are none, never a 0 that would pass for a figure.
fn median(values: impl Iterator<Item = f64>) -> anyhow::Result<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    Ok(match values.len() {
        0 => bail!("no figures to take the median of"),
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    })
}

fn ensure_wrk(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "wrk --version")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .output()
        .is_ok_and(|output| !output.stdout.is_empty() || output.status.code() == Some(1))
    {
        return Ok(());
    }
    let is_root = cmd!(sh, "id -u").read().map(|uid| uid.trim() == "0").unwrap_or(false);
    if is_root && std::path::Path::new("/usr/bin/apt-get").exists() {
        cmd!(sh, "apt-get update -qq").run()?;
        cmd!(sh, "apt-get install -y -qq wrk").run()?;
        return Ok(());
    }
    bail!("wrk is missing: install it with `apt-get install -y wrk`")
}

/// The service process's CPU time, read from `/proc/<pid>/stat`: every
/// thread's, those that have exited included.
struct ServiceCpu {
    stat: std::path::PathBuf,
    ticks_per_second: f64,
}

impl ServiceCpu {
    fn new(sh: &Shell, pid: u32) -> anyhow::Result<ServiceCpu> {
        let ticks = cmd!(sh, "getconf CLK_TCK").quiet().read()?;
        let ticks_per_second: f64 = ticks
            .trim()
            .parse()
            .with_context(|| format!("getconf CLK_TCK printed {ticks:?}"))?;
        let cpu = ServiceCpu {
            stat: format!("/proc/{pid}/stat").into(),
            ticks_per_second,
        };
        cpu.seconds()?;
        Ok(cpu)
    }

    /// User and system CPU seconds so far.
    fn seconds(&self) -> anyhow::Result<(f64, f64)> {
        let stat =
            std::fs::read_to_string(&self.stat).with_context(|| format!("cannot read {}", self.stat.display()))?;
        let (user, system) = parse_cpu_ticks(&stat).with_context(|| format!("cannot read {stat:?}"))?;
        Ok((
            user as f64 / self.ticks_per_second,
            system as f64 / self.ticks_per_second,
        ))
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces, so fields
/// are counted from its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn wrk(sh: &Shell, case: &Case<'_>, seconds: u64, connections: u32) -> anyhow::Result<Figures> {
    let Case { url, cpu, .. } = case;
    let duration = format!("{seconds}s");
    let connections = connections.to_string();
    let script_args: Vec<String> = match case.post {
        Some(post) => vec!["-s".into(), post.script.display().to_string()],
        None => Vec::new(),
    };
    let before = cpu.seconds()?;
    let output = cmd!(
        sh,
        "wrk -t2 -c{connections} -d{duration} --latency {script_args...} {url}"
    )
    .read()?;
    let after = cpu.seconds()?;
    let mut figures = parse_wrk(&output).with_context(|| format!("cannot read wrk's output:\n{output}"))?;
    let per_request = 1e6 / figures.requests as f64;
    figures.user_us = (after.0 - before.0) * per_request;
    figures.system_us = (after.1 - before.1) * per_request;
    Ok(figures)
}

/// Reads `Requests/sec`, the 50% and 99% latency lines and error counts.
fn parse_wrk(output: &str) -> Option<Figures> {
    let mut figures = Figures {
        requests_per_second: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        errors: 0,
        requests: 0,
        user_us: 0.0,
        system_us: 0.0,
    };
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => figures.requests_per_second = value.parse().ok()?,
            (Some(count), Some("requests")) => figures.requests = count.parse().ok()?,
            (Some("50%"), Some(value)) => figures.p50_ms = millis(value)?,
            (Some("99%"), Some(value)) => figures.p99_ms = millis(value)?,
            (Some("Non-2xx"), _) => figures.errors += line.rsplit(' ').next()?.parse::<u64>().ok()?,
            (Some("Socket"), Some("errors:")) => {
                figures.errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    (figures.requests_per_second > 0.0 && figures.requests > 0).then_some(figures)
}

fn millis(value: &str) -> Option<f64> {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic())?);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians() {
        assert_eq!(super::median([3.0, 1.0, 2.0].into_iter()).unwrap(), 2.0);
        assert_eq!(super::median([4.0, 1.0, 2.0, 3.0].into_iter()).unwrap(), 2.5);
        assert!(super::median(std::iter::empty()).is_err());
    }

    #[test]
    fn ratios_are_medians_of_each_rounds_ratio() {
        let figures = |requests_per_second: f64, p99_ms: f64| super::Figures {
            requests_per_second,
            p50_ms: 0.0,
            p99_ms,
            errors: 0,
            requests: 1,
            user_us: 0.0,
            system_us: 0.0,
        };
        // Per round: throughput ratios 0.5, 0.8, 0.9; p99 ratios 2.0, 1.0, 1.5.
        let rounds = vec![
            vec![figures(100.0, 2.0), figures(50.0, 4.0)],
            vec![figures(200.0, 4.0), figures(160.0, 4.0)],
            vec![figures(100.0, 0.0), figures(90.0, 1.0)],
            vec![figures(100.0, 2.0), figures(90.0, 3.0)],
        ];
        let rate = super::ratio_between(&rounds, 1, 0, |figures| figures.requests_per_second).unwrap();
        assert!((rate - 0.85).abs() < 1e-12, "{rate}");
        // The round whose baseline p99 is 0 is left out.
        assert_eq!(
            super::ratio_between(&rounds, 1, 0, |figures| figures.p99_ms).unwrap(),
            1.5
        );
        assert_eq!(
            super::ratio_between(&rounds, 0, 0, |figures| figures.p99_ms).unwrap(),
            1.0
        );
        // With every baseline 0 there is no ratio at all.
        let no_baseline = vec![vec![figures(0.0, 0.0), figures(90.0, 1.0)]];
        assert!(super::ratio_between(&no_baseline, 1, 0, |figures| figures.p99_ms).is_err());
        // Against another case: round by round, case 0 over case 1 (2, 1.25,
        // 10/9, 10/9), whose median is the mean of 10/9 and 1.25.
        let inverse = super::ratio_between(&rounds, 0, 1, |figures| figures.requests_per_second).unwrap();
        assert!((inverse - 85.0 / 72.0).abs() < 1e-12, "{inverse}");
    }

    #[test]
    fn reads_wrk_output() {
        let output = "Running 5s test @ http://127.0.0.1:1/healthz\n  2 threads and 32 connections\n  Latency Distribution\n     50%  150.00us\n     75%  200.00us\n     90%  1.00ms\n     99%    2.50ms\n  100 requests in 5.00s, 1.00KB read\n  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 4\nRequests/sec:  12345.67\n";
        let figures = super::parse_wrk(output).unwrap();
        assert_eq!(figures.requests_per_second, 12345.67);
        assert_eq!((figures.p50_ms, figures.p99_ms), (0.15, 2.5));
        assert_eq!(figures.errors, 7);
        assert_eq!(figures.requests, 100);
        // Without the request count there is no CPU per request: no figures.
        assert!(super::parse_wrk(&output.replace("100 requests in", "in")).is_none());
    }

    #[test]
    fn reads_cpu_ticks_past_a_command_name_with_spaces() {
        let stat = "4242 (wasmplug serve) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 6 0 100 0 0";
        assert_eq!(super::parse_cpu_ticks(stat), Some((1234, 567)));
        assert_eq!(super::parse_cpu_ticks("4242 (cut short) S 1"), None);
    }
}
