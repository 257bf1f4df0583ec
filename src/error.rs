//! The one error type of segloss. Every failure on user input is one of these, never a panic.

/// Result alias used throughout segloss.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a segloss call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A loss option is out of its domain (checked when the loss is built).
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option's name, in segloss's vocabulary.
        name: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The shape `[B, C, S1, ...]` is unusable.
    #[error("invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The shape given.
        shape: Vec<usize>,
        /// Why it is rejected.
        reason: String,
    },
    /// A slice or buffer does not hold the number of elements the shape implies.
    #[error("`{what}` holds {actual} elements, the shape needs {expected}")]
    LengthMismatch {
        /// Which argument (`input`, `target`, `mask`, `grad`).
        what: &'static str,
        /// Elements given.
        actual: usize,
        /// Elements expected.
        expected: usize,
    },
    /// The input holds NaN or ±Inf.
    #[error("input holds a non-finite value (NaN or ±Inf){}", at(.position))]
    NonFiniteInput {
        /// Flat index of the first offending element, when known (host checks).
        position: Option<usize>,
    },
    /// A soft target is NaN, ±Inf or outside [0, 1].
    #[error("soft target values must be finite and lie in [0, 1]{}", at(.position))]
    SoftTargetOutOfRange {
        /// Flat index of the first offending element, when known.
        position: Option<usize>,
    },
    /// A one-hot / multi-hot target of the metrics holds a value other than 0 or 1.
    #[error("one-hot / multi-hot targets must hold 0 or 1{}", at(.position))]
    NotBinary {
        /// Flat index of the first offending element, when known (host checks).
        position: Option<usize>,
    },
    /// A class index is outside `0..C` and is not `ignore_index`.
    #[error("{} outside 0..{classes} and not ignore_index{}", index(.value), at(.position))]
    ClassIndexOutOfRange {
        /// The offending value, when known (host checks).
        value: Option<i64>,
        /// Number of classes C.
        classes: usize,
        /// Flat index of the first offending element, when known.
        position: Option<usize>,
    },
    /// A caller-supplied GPU buffer is too small or lacks a usage flag.
    #[error("buffer `{name}`: {reason}")]
    InvalidBuffer {
        /// Which buffer.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The problem exceeds a device limit that segloss cannot split around.
    #[error("too large for this device: {0}")]
    TooLarge(String),
    /// No GPU adapter matched (or none exists) and a GPU was required.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a device: {0}")]
    RequestDevice(String),
    /// wgpu reported a validation error (e.g. a buffer from another device, or mapped).
    #[error("GPU validation error: {0}")]
    Validation(String),
    /// wgpu reported an out-of-memory error.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// The device was lost, or a wait on it failed.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The device lacks a limit or feature the kernels need (e.g. storage buffers per
    /// shader stage).
    #[error("unsupported device: {0}")]
    UnsupportedDevice(String),
    /// Statistics handed to `finish` do not fit this call: another shape or options, a
    /// shared block of the wrong length, or summed values that are not finite.
    #[error("invalid statistics: {0}")]
    InvalidStats(String),
    /// With `Activation::None` the input must be probabilities: a value is NaN, ±Inf or
    /// outside [0, 1] (logits passed by mistake?).
    #[error("with activation `none` the input must hold probabilities in [0, 1]{}", at(.position))]
    ProbabilityOutOfRange {
        /// Flat index of the first offending element, when known.
        position: Option<usize>,
    },
    /// `ignore_index = k` with soft targets: channel k holds a value strictly between 0
    /// and 1 (MONAI would weigh the pixel by 1 − y_k; segloss masks whole pixels).
    #[error("ignore_index with soft targets needs its channel to be 0 or 1{}", at(.position))]
    FractionalIgnore {
        /// Flat index of the first offending element, when known.
        position: Option<usize>,
    },
    /// The loss or its gradient came out NaN or ±Inf from finite inputs: an option so
    /// large (weights, α, β, smoothing) that f32 overflows.
    #[error("the result overflows f32 (loss or gradient not finite): {0}")]
    NonFiniteResult(String),
    /// A GPU-resident result (or local phase) was read before the command encoder that
    /// records it was submitted: its buffer holds no result yet. Submit the encoder
    /// first (a finishing call whose local phase never ran reports this too).
    #[error("read before its encoder was submitted: the result was never computed")]
    NotSubmitted,
    /// The operation needs a GPU context, and this one runs on the CPU reference.
    #[error("this operation needs a GPU context (the context runs on the CPU reference)")]
    NotOnGpu,
    /// The classic formulation met soft targets (a kept target value strictly between 0
    /// and 1) and the options ask for an error ([`crate::SoftLabelGuard::Error`]).
    #[error(
        "soft targets with the classic formulation: its optimum is biased (a pixel \
         labelled 0.5 pulls its prediction to 1); use Formulation::Soft \
         (MONAI soft_label=True)"
    )]
    SoftTargetsWithClassic,
    /// A blocking call in the browser (wasm32), whose one thread may never wait for the
    /// GPU: use the async form (`Context::new_async`, `Loss::forward_async`,
    /// `Loss::stats_async`, `Metrics::result_async`, ...). Never raised on native targets.
    #[error("{0} waits for the GPU, which the browser's thread cannot do: use the async API")]
    WouldBlock(String),
    /// A deep-supervision call's error in one head (0 = the first, full-resolution one).
    #[error("head {head}: {source}")]
    InHead {
        /// The head's index in the call's list.
        head: usize,
        /// What is wrong with it.
        source: Box<Error>,
    },
}

fn index(value: &Option<i64>) -> String {
    match value {
        Some(v) => format!("class index {v} is"),
        None => "a class index is".into(),
    }
}

fn at(position: &Option<usize>) -> String {
    match position {
        Some(i) => format!(" (at flat index {i})"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn option(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn from_wgpu(err: wgpu::Error) -> Self {
        match err {
            wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory(err.to_string()),
            wgpu::Error::Validation { description, .. } => Error::Validation(description),
            wgpu::Error::Internal { description, .. } => Error::Validation(description),
        }
    }
}
