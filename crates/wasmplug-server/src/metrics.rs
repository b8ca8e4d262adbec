//! `GET /metrics` in the Prometheus text format, rendered from the per-plugin
//! atomic counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::registry::LATENCY_BUCKETS_MICROS;
use crate::Shared;

/// Renders every plugin's counters.
pub async fn render(State(state): State<Shared>) -> impl IntoResponse {
    let mut out = String::new();
    out.push_str("# HELP wasmplug_calls_total Plugin calls that succeeded.\n# TYPE wasmplug_calls_total counter\n");
    let slots = state.registry.slots();
    for (name, slot) in &slots {
        let _ = writeln!(
            out,
            "wasmplug_calls_total{{plugin=\"{name}\"}} {}",
            slot.metrics.calls_ok.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP wasmplug_call_errors_total Plugin calls that failed, by error code.\n# TYPE wasmplug_call_errors_total counter\n");
    for (name, slot) in &slots {
        let errors = slot
            .metrics
            .errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for (code, count) in errors {
            let _ = writeln!(
                out,
                "wasmplug_call_errors_total{{plugin=\"{name}\",code=\"{code}\"}} {count}"
            );
        }
    }
    out.push_str(
        "# HELP wasmplug_call_duration_seconds Plugin call latency.\n# TYPE wasmplug_call_duration_seconds histogram\n",
    );
    for (name, slot) in &slots {
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS_MICROS.iter().zip(&slot.metrics.latency_buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "wasmplug_call_duration_seconds_bucket{{plugin=\"{name}\",le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += slot.metrics.latency_overflow.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wasmplug_call_duration_seconds_bucket{{plugin=\"{name}\",le=\"+Inf\"}} {cumulative}"
        );
        let sum = slot.metrics.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "wasmplug_call_duration_seconds_sum{{plugin=\"{name}\"}} {sum}");
        let _ = writeln!(
            out,
            "wasmplug_call_duration_seconds_count{{plugin=\"{name}\"}} {cumulative}"
        );
    }
    out.push_str(
        "# HELP wasmplug_fuel_high_water Most fuel one call consumed.\n# TYPE wasmplug_fuel_high_water gauge\n",
    );
    for (name, slot) in &slots {
        let _ = writeln!(
            out,
            "wasmplug_fuel_high_water{{plugin=\"{name}\"}} {}",
            slot.metrics.fuel_high_water.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP wasmplug_instances_in_flight Instances running a call now.\n# TYPE wasmplug_instances_in_flight gauge\n");
    out.push_str("# HELP wasmplug_instances_idle Idle instances kept for the next calls (reuse policy, or a stateless plugin).\n# TYPE wasmplug_instances_idle gauge\n");
    out.push_str("# HELP wasmplug_plugin_loaded Whether a version of the plugin is serving.\n# TYPE wasmplug_plugin_loaded gauge\n");
    for (name, slot) in &slots {
        let active = slot.active.load();
        let in_flight = active.as_ref().map_or(0, |active| active.plugin.in_flight());
        let _ = writeln!(out, "wasmplug_instances_in_flight{{plugin=\"{name}\"}} {in_flight}");
        let idle = active.as_ref().map_or(0, |active| active.plugin.idle_instances());
        let _ = writeln!(out, "wasmplug_instances_idle{{plugin=\"{name}\"}} {idle}");
        let _ = writeln!(
            out,
            "wasmplug_plugin_loaded{{plugin=\"{name}\"}} {}",
            u8::from(active.is_some())
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
