//! Shapes and host-side inputs (SPEC §1).

use crate::{Error, Result};

/// The shape of a loss input: `[B, C, S1, S2, ...]`, row-major, channel-first (PyTorch
/// NCHW / NCDHW), with at least one spatial dimension.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: Vec<usize>,
}

impl Shape {
    /// Checks and wraps `[B, C, S1, ...]`: B, C and N = S1·S2·… must be ≥ 1 and the
    /// element count must fit in `u32` indexing (2³² − 1 elements).
    pub fn new(dims: &[usize]) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidShape {
            shape: dims.to_vec(),
            reason: reason.to_string(),
        };
        if dims.len() < 3 {
            return Err(bad("need [B, C, S1, ...] with at least one spatial dim"));
        }
        if dims[0] == 0 {
            return Err(bad("empty batch (B = 0)"));
        }
        if dims[1] == 0 {
            return Err(bad("no classes (C = 0)"));
        }
        if dims[2..].contains(&0) {
            return Err(bad("no pixels (a spatial dim is 0)"));
        }
        let total = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad("element count overflows usize"))?;
        if total > u32::MAX as usize {
            return Err(bad("more than 2^32 - 1 elements"));
        }
        Ok(Shape {
            dims: dims.to_vec(),
        })
    }

    /// All dims, `[B, C, S1, ...]`.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }
    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.dims[0]
    }
    /// Number of classes C (channels).
    pub fn classes(&self) -> usize {
        self.dims[1]
    }
    /// Pixels (voxels) per image, N = S1·S2·….
    pub fn pixels(&self) -> usize {
        self.dims[2..].iter().product()
    }
    /// Elements of the input, B·C·N.
    pub fn len(&self) -> usize {
        self.batch() * self.classes() * self.pixels()
    }
    /// Never true: a valid shape has at least one element (kept for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Elements of an index target or mask, B·N.
    pub fn map_len(&self) -> usize {
        self.batch() * self.pixels()
    }
}

/// The target of a host call.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Soft labels `[B, C, S...]`, values in [0, 1].
    Soft(&'a [f32]),
    /// Class indices `[B, S...]`, values in `0..C` or `ignore_index`.
    Index(&'a [u32]),
    /// Class indices as PyTorch's `int64` `[B, S...]`; range-checked on the host, and
    /// `ignore_index` may be negative (e.g. -100).
    IndexI64(&'a [i64]),
}

impl Target<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Target::Soft(t) => t.len(),
            Target::Index(t) => t.len(),
            Target::IndexI64(t) => t.len(),
        }
    }
    pub(crate) fn is_index(&self) -> bool {
        !matches!(self, Target::Soft(_))
    }
}

/// One host call's data: input logits (or probabilities), target and optional keep-mask.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// `[B, C, S...]`.
    pub shape: &'a Shape,
    /// f32 `[B, C, S...]`: logits, or probabilities with activation `none`.
    pub input: &'a [f32],
    /// Soft or index target.
    pub target: Target<'a>,
    /// Optional keep-mask `[B, S...]`: `false` pixels are ignored.
    pub mask: Option<&'a [bool]>,
}

impl<'a> Batch<'a> {
    /// A batch with soft targets and no mask.
    pub fn soft(shape: &'a Shape, input: &'a [f32], target: &'a [f32]) -> Self {
        Batch {
            shape,
            input,
            target: Target::Soft(target),
            mask: None,
        }
    }
    /// A batch with `u32` class-index targets and no mask.
    pub fn index(shape: &'a Shape, input: &'a [f32], target: &'a [u32]) -> Self {
        Batch {
            shape,
            input,
            target: Target::Index(target),
            mask: None,
        }
    }
    /// The same batch with a keep-mask.
    pub fn with_mask(mut self, mask: &'a [bool]) -> Self {
        self.mask = Some(mask);
        self
    }

    /// The keep-mask with `ignore_index`'s soft-target rule applied (MONAI's
    /// `create_ignore_mask`): `None` when the rule does not apply (index targets, no
    /// ignore index), else the caller's mask AND the rule's. Lengths must be checked.
    pub(crate) fn soft_ignore_mask(&self, ignore: Option<i64>) -> Result<Option<Vec<bool>>> {
        let (Target::Soft(t), Some(k)) = (self.target, ignore) else {
            return Ok(None);
        };
        let s = self.shape;
        let (b_all, c_all, n) = (s.batch(), s.classes(), s.pixels());
        let mut keep = match self.mask {
            Some(m) => m.to_vec(),
            None => vec![true; b_all * n],
        };
        for b in 0..b_all {
            let row = |c: usize| &t[(b * c_all + c) * n..(b * c_all + c + 1) * n];
            if k >= 0 && (k as u64) < c_all as u64 {
                for (i, &y) in row(k as usize).iter().enumerate() {
                    if y == 1.0 {
                        keep[b * n + i] = false;
                    } else if y != 0.0 {
                        let position = (b * c_all + k as usize) * n + i;
                        return Err(Error::FractionalIgnore {
                            position: Some(position),
                        });
                    }
                }
            } else {
                for i in 0..n {
                    if (0..c_all).all(|c| row(c)[i] <= 0.0) {
                        keep[b * n + i] = false;
                    }
                }
            }
        }
        Ok(Some(keep))
    }

    /// Checks every length against the shape.
    pub(crate) fn check_lengths(&self) -> Result<()> {
        let s = self.shape;
        check_len("input", self.input.len(), s.len())?;
        let expected = if self.target.is_index() {
            s.map_len()
        } else {
            s.len()
        };
        check_len("target", self.target.len(), expected)?;
        if let Some(m) = self.mask {
            check_len("mask", m.len(), s.map_len())?;
        }
        Ok(())
    }
}

pub(crate) fn check_len(what: &'static str, actual: usize, expected: usize) -> Result<()> {
    if actual != expected {
        return Err(Error::LengthMismatch {
            what,
            actual,
            expected,
        });
    }
    Ok(())
}

/// i64 class map → u32, ignore value → u32::MAX; values outside 0..C are errors (their
/// position counted from `base`: `t` may be a slice of the whole map).
pub(crate) fn index_from_i64(
    t: &[i64],
    ignore: Option<i64>,
    classes: usize,
    base: usize,
) -> Result<Vec<u32>> {
    t.iter()
        .enumerate()
        .map(|(j, &v)| {
            if Some(v) == ignore {
                Ok(u32::MAX)
            } else if v >= 0 && (v as u64) < classes as u64 {
                Ok(v as u32)
            } else {
                Err(Error::ClassIndexOutOfRange {
                    value: Some(v),
                    classes,
                    position: Some(base + j),
                })
            }
        })
        .collect()
}

/// A keep-mask as the kernels read it: one byte per pixel (a PyTorch `bool` tensor's
/// bytes), padded with zeros to whole 4-byte words.
pub(crate) fn mask_bytes(mask: &[bool]) -> Vec<u8> {
    let mut bytes: Vec<u8> = mask.iter().map(|&k| u8::from(k)).collect();
    bytes.resize(mask_buffer_bytes(mask.len()), 0);
    bytes
}

/// Bytes of a keep-mask buffer of `pixels` pixels (see [`mask_bytes`]).
pub(crate) fn mask_buffer_bytes(pixels: usize) -> usize {
    pixels.div_ceil(4) * 4
}

/// The ignore value as the kernels see it in a host u32 label slice (a negative
/// `ignore_index` matches no u32 label).
pub(crate) fn ignore_u32(ignore: Option<i64>) -> Option<u32> {
    ignore.and_then(|i| u32::try_from(i).ok())
}

/// The ignore value as the kernels see it in a caller's 32-bit label buffer: a u32
/// value, or a negative one's i32 bit pattern (PyTorch's and burn's −100 in an i32
/// tensor).
pub(crate) fn ignore_word(ignore: Option<i64>) -> Option<u32> {
    ignore.and_then(|i| {
        u32::try_from(i)
            .ok()
            .or_else(|| i32::try_from(i).ok().map(|i| i as u32))
    })
}
