//! Timing helpers: medians of repeated calls, alternated pairs, the process's peak RSS.

use std::time::Instant;

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `f` and of `g`, called alternately `runs` times each after one
/// warm-up call of each (so that both see the same machine noise), and the median of
/// the paired ratios g/f (robust to slow drifts in machine load).
pub fn time_pair(runs: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64, f64) {
    f();
    g();
    let (mut tf, mut tg) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate which goes first, so neither always follows the other.
        let one = |h: &mut dyn FnMut(), v: &mut Vec<f64>| {
            let t = Instant::now();
            h();
            v.push(t.elapsed().as_secs_f64());
        };
        if i % 2 == 0 {
            one(&mut f, &mut tf);
            one(&mut g, &mut tg);
        } else {
            one(&mut g, &mut tg);
            one(&mut f, &mut tf);
        }
    }
    let ratios = tf.iter().zip(&tg).map(|(a, b)| b / a).collect();
    (median(tf), median(tg), median(ratios))
}

/// Median seconds of `runs` calls of `f` after one warm-up call.
pub fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// The process's peak resident memory in MiB (Linux; NaN elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
