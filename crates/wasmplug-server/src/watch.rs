//! Watches the plugin directory and reloads a plugin whose `.wasm` or
//! `.toml` changed. Reloads run on a thread of their own: validation and
//! compilation never block the event loop or a call.

use std::collections::BTreeSet;
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::registry::{is_valid_name, DirectoryRegistry};

/// Starts watching; dropping the returned watcher stops it.
pub fn watch(registry: Arc<DirectoryRegistry>) -> anyhow::Result<notify::RecommendedWatcher> {
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
                    registry.reload_seen_change(&name);
                }
            }
        })?;
    Ok(watcher)
}

fn collect(event: notify::Result<notify::Event>, names: &mut BTreeSet<String>) {
    let Ok(event) = event else {
        return;
    };
    // Reading a file is an event too (inotify's open and close-nowrite):
    // a reload reads the plugin, so reacting to reads would reload forever,
    // and two services sharing a directory would keep each other busy.
    if matches!(event.kind, EventKind::Access(_)) {
        return;
    }
    for path in event.paths {
        let is_plugin_file = matches!(path.extension().and_then(|ext| ext.to_str()), Some("wasm" | "toml"));
        if let (true, Some(stem)) = (is_plugin_file, path.file_stem().and_then(|stem| stem.to_str())) {
            if is_valid_name(stem) {
                names.insert(stem.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RemoveKind};
    use notify::{Event, EventKind};

    use super::*;

    fn names_of(kind: EventKind, path: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        collect(Ok(Event::new(kind).add_path(path.into())), &mut names);
        names
    }

    #[test]
    fn changes_reload_and_reads_do_not() {
        let changed = BTreeSet::from(["process".to_owned()]);
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert_eq!(names_of(kind, "/plugins/process.wasm"), changed, "{kind:?}");
        }
        assert_eq!(
            names_of(EventKind::Modify(ModifyKind::Any), "/plugins/process.toml"),
            changed
        );
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(names_of(kind, "/plugins/process.wasm").is_empty(), "{kind:?}");
        }
        for path in [
            "/plugins/.tmp/process.wasm.part",
            "/plugins/Bad Name.wasm",
            "/plugins/notes.txt",
        ] {
            assert!(names_of(EventKind::Create(CreateKind::File), path).is_empty(), "{path}");
        }
    }
}
