//! The test binaries' logger: wgpu reports API misuse and what the Khronos validation
//! layer finds (`WGPU_VALIDATION=1`) only through the `log` crate, so without a logger
//! those messages vanish and a test passes over them. This one records every
//! error-level record of `wgpu`, `wgpu_core` and `wgpu_hal` with the test (thread) that
//! produced it and makes that test fail at its next checkpoint ([`check`], called by the
//! GPU helpers and the comparisons of `common`). A record no checkpoint saw (one raised
//! after a test's last check, or when a device is dropped) fails the whole binary at
//! exit, naming the test. The binary prints the count at exit either way.
//!
//! It also gives Mesa a private `XDG_RUNTIME_DIR` when none is set (its
//! "XDG_RUNTIME_DIR is invalid" line per device is harmless, but reads as an error),
//! before the first device is created. Library users are untouched: this is test code.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// The log targets whose error records fail tests.
const WATCHED: [&str; 3] = ["wgpu", "wgpu_core", "wgpu_hal"];

struct Record {
    thread: String,
    target: String,
    message: String,
    /// A checkpoint of its thread has failed the test over it.
    seen: bool,
}

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
static WARNINGS: AtomicUsize = AtomicUsize::new(0);

struct Watch;

fn watched(target: &str) -> bool {
    WATCHED.iter().any(|w| {
        target == *w
            || target
                .strip_prefix(w)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

fn records() -> std::sync::MutexGuard<'static, Vec<Record>> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner())
}

impl log::Log for Watch {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::Level::Warn && watched(meta.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let message = record.args().to_string();
        // Past the harness's capture, so that the message shows whatever happens next.
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{} {}] ({thread}) {message}",
            record.level(),
            record.target()
        );
        if record.level() == log::Level::Error {
            records().push(Record {
                thread,
                target: record.target().to_string(),
                message,
                seen: false,
            });
        } else {
            WARNINGS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

static WATCH: Watch = Watch;

/// Installs the logger (once per binary) and Mesa's runtime directory. Called by every
/// helper that makes a device, before the first one.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        private_runtime_dir();
        // Another logger (a test's own) wins; this one then only counts nothing.
        if log::set_logger(&WATCH).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
        // SAFETY: `report_at_exit` is a plain `extern "C" fn()` that touches only this
        // module's statics and stderr; registering it has no other precondition. There is
        // no safe way to run code after the test harness's `main` returns.
        unsafe {
            libc::atexit(report_at_exit);
        }
    });
}

/// Mesa prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." once
/// per device when the variable is unset: a private directory keeps the test log clean.
fn private_runtime_dir() {
    let ok = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if ok {
        return;
    }
    let dir = std::env::temp_dir().join(format!("segloss-xdg-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        // Set once, before this binary's first device (every device-making helper calls
        // `install` first, under its `Once`).
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

/// Fails the calling test when wgpu logged an error on its thread since its last
/// checkpoint.
pub fn check() {
    let thread = std::thread::current().name().unwrap_or("?").to_string();
    let mut all = records();
    let mine: Vec<String> = all
        .iter_mut()
        .filter(|r| r.thread == thread && !r.seen)
        .map(|r| {
            r.seen = true;
            format!("[{}] {}", r.target, r.message)
        })
        .collect();
    drop(all);
    assert!(
        mine.is_empty(),
        "wgpu logged {} error(s) during this test:\n{}",
        mine.len(),
        mine.join("\n")
    );
}

/// Error records so far, and how many of them `pred` accepts (for the test that
/// provokes one on purpose). Marks the accepted ones seen.
pub fn take_matching(pred: impl Fn(&str, &str) -> bool) -> usize {
    let mut n = 0;
    for r in records().iter_mut().filter(|r| !r.seen) {
        if pred(&r.target, &r.message) {
            r.seen = true;
            n += 1;
        }
    }
    n
}

/// At exit: prints the count, and ends the process with status 101 when a record was
/// never failed by a checkpoint (after the harness's own summary, which cannot know).
extern "C" fn report_at_exit() {
    let all = records();
    let unseen: Vec<&Record> = all.iter().filter(|r| !r.seen).collect();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "wgpu log watch: {} error record(s) ({} failed their test, {} unclaimed), {} warning(s)",
        all.len(),
        all.len() - unseen.len(),
        unseen.len(),
        WARNINGS.load(Ordering::Relaxed)
    );
    if unseen.is_empty() {
        return;
    }
    for r in &unseen {
        let _ = writeln!(err, "  in {}: [{}] {}", r.thread, r.target, r.message);
    }
    let _ = writeln!(err, "wgpu log watch: FAILED (wgpu errors no test claimed)");
    let _ = err.flush();
    // SAFETY: `_exit` ends the process at once; nothing after it runs, and the
    // harness's output has been written already.
    unsafe { libc::_exit(101) }
}
