//! Stage 4 of `evaluate`: checked pairs counted into a [`Metrics`] accumulator, each
//! error naming the pair at fault, and the results at the end.
//!
//! On a CPU adapter (lavapipe, SwiftShader, llvmpipe) the accumulator counts on the
//! host ([`Counting::Auto`]); on a GPU the pairs are uploaded and counted there, read
//! back every [`READ_EVERY`] pairs or [`READ_EVERY_BYTES`] uploaded bytes (so that the
//! uploads in flight stay bounded) and
//! after each scored prediction (whose non-finite scores the shader reports per
//! submission, so the read names the file). Label maps are checked on the host before
//! they are uploaded.

use segloss::metrics::{Counting, Metrics, MetricsResult, Prediction, WorstCase};
use segloss::Context;

use crate::Pair;

/// Pairs counted on a device between two readbacks.
pub const READ_EVERY: usize = 16;

/// Bytes uploaded between two readbacks, at most (about; a pair is never split).
pub const READ_EVERY_BYTES: usize = 128 << 20;

/// The counting stage: an accumulator and the names of the images it holds, in order.
#[derive(Debug)]
pub struct Counter {
    metrics: Metrics,
    names: Vec<String>,
    unread: usize,
    unread_bytes: usize,
}

/// The results: the metrics, the worst cases by key, the image names in order.
#[derive(Debug)]
pub struct Counted {
    /// Every metric of every image.
    pub result: MetricsResult,
    /// `(key, worst case)` per `--worst` value.
    pub worst: Vec<(String, WorstCase)>,
    /// The images' names, in the order they were counted.
    pub names: Vec<String>,
}

impl Counter {
    /// An empty counter on `ctx`; `counting` says where host pairs are counted on a GPU
    /// context ([`Counting::Auto`]: on the host on a CPU adapter).
    pub fn new(
        ctx: &Context,
        classes: usize,
        ignore: Option<i64>,
        counting: Counting,
    ) -> Result<Self, String> {
        let metrics = Metrics::new(ctx, classes, ignore)
            .map_err(|e| e.to_string())?
            .with_counting(counting);
        Ok(Counter {
            metrics,
            names: Vec::new(),
            unread: 0,
            unread_bytes: 0,
        })
    }

    /// Counts on `ctx` from now on (`counting` as in [`Counter::new`]), the counts so far
    /// carried over: the results are those of one counter (the CLI counts on the host
    /// while the adapter is being opened).
    pub fn move_to(&mut self, ctx: &Context, counting: Counting) -> Result<(), String> {
        let mut metrics = Metrics::new(ctx, self.metrics.classes(), self.metrics.ignore_index())
            .map_err(|e| e.to_string())?
            .with_counting(counting);
        let state = self.metrics.state().map_err(|e| e.to_string())?;
        metrics.merge(state).map_err(|e| e.to_string())?;
        self.metrics = metrics;
        (self.unread, self.unread_bytes) = (0, 0);
        Ok(())
    }

    /// Pairs counted so far.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no pair was counted yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the pairs are counted on the host.
    pub fn on_host(&self) -> bool {
        self.metrics.counts_on_host()
    }

    /// Counts one pair; `Ok(true)` when the device's counts must be read now (call
    /// [`Counter::read`] or [`Counter::read_async`] before the next pair, so that an
    /// error still names this pair).
    fn update(&mut self, name: &str, files: (&str, &str), pair: &Pair<'_>) -> Result<bool, String> {
        self.metrics
            .update(&pair.shape, pair.pred, pair.target, None)
            .map_err(|e| format!("{} / {}: {e}", files.0, files.1))?;
        self.names.push(name.to_string());
        if self.on_host() {
            return Ok(false);
        }
        self.unread += 1;
        // The prediction's and the target's words, as uploaded.
        let words = match pair.pred {
            Prediction::Scores(x) => x.len(),
            _ => pair.shape.map_len(),
        } + pair.shape.map_len();
        self.unread_bytes += 4 * words;
        let due = self.unread >= READ_EVERY || self.unread_bytes >= READ_EVERY_BYTES;
        Ok(matches!(pair.pred, Prediction::Scores(_)) || due)
    }

    /// Counts one pair (`files`: the prediction's and the target's, for errors).
    pub fn add(&mut self, name: &str, files: (&str, &str), pair: &Pair<'_>) -> Result<(), String> {
        if self.update(name, files, pair)? {
            (self.unread, self.unread_bytes) = (0, 0);
            let named = |e: segloss::Error| format!("{} / {}: {e}", files.0, files.1);
            self.metrics.state().map_err(named)?;
        }
        Ok(())
    }

    /// [`Counter::add`] without blocking (the browser).
    pub async fn add_async(
        &mut self,
        name: &str,
        files: (&str, &str),
        pair: &Pair<'_>,
    ) -> Result<(), String> {
        if self.update(name, files, pair)? {
            (self.unread, self.unread_bytes) = (0, 0);
            let named = |e: segloss::Error| format!("{} / {}: {e}", files.0, files.1);
            self.metrics.state_async().await.map_err(named)?;
        }
        Ok(())
    }

    /// The results, with the worst cases of each `(key, q)`.
    pub fn finish(mut self, worst: &[(String, f64)]) -> Result<Counted, String> {
        let result = self.metrics.result().map_err(|e| e.to_string())?;
        let worst = worst
            .iter()
            .map(|(k, q)| Ok((k.clone(), self.metrics.worst(*q)?)))
            .collect::<Result<_, segloss::Error>>()
            .map_err(|e| e.to_string())?;
        Ok(Counted {
            result,
            worst,
            names: self.names,
        })
    }

    /// [`Counter::finish`] without blocking (the browser).
    pub async fn finish_async(mut self, worst: &[(String, f64)]) -> Result<Counted, String> {
        let result = self
            .metrics
            .result_async()
            .await
            .map_err(|e| e.to_string())?;
        let mut cases = Vec::new();
        for (k, q) in worst {
            let w = self
                .metrics
                .worst_async(*q)
                .await
                .map_err(|e| e.to_string())?;
            cases.push((k.clone(), w));
        }
        Ok(Counted {
            result,
            worst: cases,
            names: self.names,
        })
    }
}
