//! Watches the plugin directory and reloads a plugin whose `.wasm` or
//! `.toml` changed. Reloads run on a thread of their own: validation and
//! compilation never block the event loop or a call.

use std::collections::BTreeSet;
use std::sync::Arc;

use notify::{RecursiveMode, Watcher as _};

use crate::registry::{is_valid_name, Registry};

/// Starts watching; dropping the returned watcher stops it.
pub fn watch(registry: Arc<Registry>) -> anyhow::Result<notify::RecommendedWatcher> {
    let (events_tx, events_rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(events_tx)?;
    watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name("wasmplug-watch".into())
        .spawn(move || {
            while let Ok(event) = events_rx.recv() {
                let mut names = BTreeSet::new();
                collect(event, &mut names);
                // Take whatever else arrived meanwhile, so a burst of writes to
                // one file causes one reload.
                while let Ok(event) = events_rx.try_recv() {
                    collect(event, &mut names);
                }
                for name in names {
                    registry.reload(&name);
                }
            }
        })?;
    Ok(watcher)
}

fn collect(event: notify::Result<notify::Event>, names: &mut BTreeSet<String>) {
    let Ok(event) = event else {
        return;
    };
    for path in event.paths {
        let is_plugin_file = matches!(path.extension().and_then(|ext| ext.to_str()), Some("wasm" | "toml"));
        if let (true, Some(stem)) = (is_plugin_file, path.file_stem().and_then(|stem| stem.to_str())) {
            if is_valid_name(stem) {
                names.insert(stem.to_owned());
            }
        }
    }
}
