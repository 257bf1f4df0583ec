//! Shared helpers of the `segloss` command's tests: running the built binary, whether a
//! GPU adapter is required (CI), a small deterministic RNG and temporary folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `segloss` binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_segloss")
}

/// A private runtime directory for the children, when the environment has none: Mesa
/// prints "XDG_RUNTIME_DIR is invalid or not set" for every device otherwise.
fn runtime_dir() -> Option<PathBuf> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).is_dir()) {
        return None;
    }
    let d = std::env::temp_dir().join(format!("segloss-cli-tests-xdg-{}", std::process::id()));
    std::fs::create_dir_all(&d).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
    }
    Some(d)
}

/// Runs `segloss args…` to completion.
pub fn segloss(args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    if let Some(d) = runtime_dir() {
        cmd.env("XDG_RUNTIME_DIR", d);
    }
    cmd.output().expect("the segloss binary runs")
}

/// stdout and stderr of a run, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether GPU tests must find an adapter: in CI (`CI`) or with `SEGLOSS_REQUIRE_GPU`,
/// a test that would run on the CPU fallback fails instead (as the library's tests).
pub fn gpu_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("SEGLOSS_REQUIRE_GPU").is_some()
}

/// The notice the command prints when no adapter exists.
pub const NO_ADAPTER: &str = "no GPU adapter found";

/// Fails when a run fell back to the CPU and an adapter is required; else says so on
/// stderr (past the harness's capture) and returns false: the caller skips its GPU part.
pub fn ran_on_gpu(out: &Output, test: &str) -> bool {
    let t = text(out);
    if !t.contains(NO_ADAPTER) {
        return true;
    }
    assert!(
        !gpu_required(),
        "{test}: no GPU adapter, and CI / SEGLOSS_REQUIRE_GPU is set:\n{t}"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test} (GPU part): no GPU adapter; set SEGLOSS_REQUIRE_GPU=1 to fail instead"
    );
    false
}

/// A fresh temporary folder for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("segloss-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// SplitMix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
