//! One file's array from its bytes: a NumPy `.npy` of any integer, boolean or float
//! dtype ([`crate::npy`]), or a NIfTI-1 / NIfTI-2 `.nii` / `.nii.gz` label volume
//! ([`crate::nifti`]), in the order NumPy and nibabel give it (C order, NIfTI's `[X, Y,
//! Z]` axes first to last). Every allocation is bounded by the file's bytes (or, for a
//! `.nii.gz`, by the bytes it actually decompresses to), never by a header's claim.

use std::fmt;

/// A file's array: integer labels or float scores, with its shape (C order).
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// Integer labels and their shape.
    Labels(Vec<i64>, Vec<usize>),
    /// Float scores and their shape.
    Scores(Vec<f32>, Vec<usize>),
}

impl Array {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::Labels(_, s) | Array::Scores(_, s) => s,
        }
    }
}

/// A file that could not be decoded: its name and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The file, as the caller named it.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for String {
    fn from(e: DecodeError) -> String {
        e.to_string()
    }
}

/// A reader's error, before the file's name is attached.
pub(crate) type Res<T> = Result<T, String>;

/// The extensions `evaluate` reads, longest first (matched without regard to case).
const EXTENSIONS: [&str; 3] = [".nii.gz", ".nii", ".npy"];

/// The name a file is paired by (its name without `.npy`, `.nii` or `.nii.gz`, in any
/// case: `a.NPY` pairs as `a`), or `None` for a file of another kind.
pub fn stem(file_name: &str) -> Option<String> {
    let lower = file_name.to_ascii_lowercase();
    EXTENSIONS.iter().find_map(|ext| {
        let n = file_name.len().checked_sub(ext.len())?;
        (lower.ends_with(ext) && n > 0).then(|| file_name[..n].to_string())
    })
}

/// The product of a shape's dimensions, or an error when it overflows `usize`.
pub(crate) fn elements(shape: &[usize]) -> Res<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?}: its element count overflows"))
}

/// A dimension from a file (`u64` / `i64`), as a `usize` of this machine (wasm32 too),
/// or an error.
pub(crate) fn dim(v: i128, what: &str) -> Res<usize> {
    usize::try_from(v).map_err(|_| format!("{what} {v} is not a size this machine can hold"))
}

/// An empty vector with room for `n` elements, or an error when the machine refuses
/// the allocation (an address-space limit, a 32-bit page): never an abort.
pub(crate) fn vec_for<T>(n: usize) -> Res<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        format!(
            "out of memory: {n} elements of {} bytes do not fit",
            std::mem::size_of::<T>()
        )
    })?;
    Ok(v)
}

/// The `N`-byte words of `data` (little-endian, or big with `big`), each converted by
/// `f`: the one element loop of both readers. An allocation the machine refuses is an
/// error, not an abort.
pub(crate) fn words<const N: usize, T>(
    data: &[u8],
    big: bool,
    f: impl Fn([u8; N]) -> T,
) -> Res<Vec<T>> {
    let mut out = vec_for(data.len() / N)?;
    out.extend(data.chunks_exact(N).map(|c| {
        let mut b: [u8; N] = c.try_into().unwrap_or([0; N]);
        if big {
            b.reverse();
        }
        f(b)
    }));
    Ok(out)
}

/// Integers of `size` bytes (1, 2, 4 or 8), signed or not, as labels; `None` for another
/// size. A uint64 above 2^63 - 1 is an error.
pub(crate) fn ints(data: &[u8], big: bool, signed: bool, size: usize) -> Option<Res<Vec<i64>>> {
    Some(match (signed, size) {
        (true, 1) => words(data, big, |b: [u8; 1]| i64::from(b[0] as i8)),
        (false, 1) => words(data, big, |b: [u8; 1]| i64::from(b[0])),
        (true, 2) => words(data, big, |b| i16::from_le_bytes(b).into()),
        (false, 2) => words(data, big, |b| u16::from_le_bytes(b).into()),
        (true, 4) => words(data, big, |b| i32::from_le_bytes(b).into()),
        (false, 4) => words(data, big, |b| u32::from_le_bytes(b).into()),
        (true, 8) => words(data, big, i64::from_le_bytes),
        (false, 8) => words(data, big, u64::from_le_bytes).and_then(|v| {
            match v.iter().find(|&&x| i64::try_from(x).is_err()) {
                Some(x) => Err(format!("a uint64 label {x} above 2^63 - 1")),
                // Same size: the vector's memory is reused.
                None => Ok(v.into_iter().map(|x| x as i64).collect()),
            }
        }),
        _ => return None,
    })
}

/// `data` (column-major, the first axis fastest: NIfTI's order, NumPy's
/// `fortran_order`) in row-major order for the same `shape`.
///
/// Reversing the axes is, for each index of the middle axes, a transpose of the plane
/// of the first and the last axis; it goes tile by tile so that both the reads and the
/// writes stay in cache (element by element, the writes of a 256×256×128 volume land
/// 32 KiB apart and the transpose took longer than inflating the file).
pub(crate) fn to_c_order<T: Copy>(data: Vec<T>, shape: &[usize]) -> Res<Vec<T>> {
    // 8 × 8 tiles: a tile's 8 output rows lie a power of two apart in a volume (the
    // same cache set), and caches hold 8 such lines; larger tiles measured slower
    // (uint8 256×256×128: tiles of 8, 16, 32 took 1 : 1.3 : 1.7).
    let tile = 8;
    if data.is_empty() || shape.iter().filter(|&&d| d > 1).count() < 2 {
        return Ok(data); // a vector (or nothing): both orders agree
    }
    // Strides (no overflow: each is at most data.len()): row-major for the output,
    // column-major for the input.
    let nd = shape.len();
    let mut c_stride = vec![1usize; nd];
    for k in (0..nd - 1).rev() {
        c_stride[k] = c_stride[k + 1] * shape[k + 1];
    }
    let mut f_stride = vec![1usize; nd];
    for k in 1..nd {
        f_stride[k] = f_stride[k - 1] * shape[k - 1];
    }
    let (first, last) = (shape[0], shape[nd - 1]);
    let (out_first, in_last) = (c_stride[0], f_stride[nd - 1]);
    let middle = &shape[1..nd - 1];
    let planes: usize = middle.iter().product();
    let mut out = vec_for(data.len())?;
    out.resize(data.len(), data[0]);
    let mut idx = vec![0usize; middle.len()];
    let (mut from, mut to) = (0usize, 0usize); // the plane's offsets
    for _ in 0..planes {
        for x0 in (0..first).step_by(tile) {
            let xs = x0..first.min(x0 + tile);
            for z0 in (0..last).step_by(tile) {
                for z in z0..last.min(z0 + tile) {
                    let src = &data[from + z * in_last..];
                    for x in xs.clone() {
                        out[to + x * out_first + z] = src[x];
                    }
                }
            }
        }
        // The next index of the middle axes (the first fastest, as the input).
        for k in 0..middle.len() {
            idx[k] += 1;
            from += f_stride[k + 1];
            to += c_stride[k + 1];
            if idx[k] < middle[k] {
                break;
            }
            from -= f_stride[k + 1] * middle[k];
            to -= c_stride[k + 1] * middle[k];
            idx[k] = 0;
        }
    }
    Ok(out)
}

/// The bytes of elements of `size` bytes (1, 2, 4 or 8) stored column-major, in
/// row-major order for `shape`: reordered before they are widened into labels (an
/// eighth of the bytes of the i64 labels to move for a uint8 volume).
pub(crate) fn c_order_bytes(data: &[u8], size: usize, shape: &[usize]) -> Res<Vec<u8>> {
    fn each<const N: usize>(data: &[u8], shape: &[usize]) -> Res<Vec<u8>> {
        let mut v: Vec<[u8; N]> = vec_for(data.len() / N)?;
        v.extend(data.chunks_exact(N).map(|c| {
            let mut w = [0u8; N];
            w.copy_from_slice(c);
            w
        }));
        Ok(to_c_order(v, shape)?.concat())
    }
    match size {
        1 => to_c_order(data.to_vec(), shape),
        2 => each::<2>(data, shape),
        4 => each::<4>(data, shape),
        8 => each::<8>(data, shape),
        _ => Err(format!("{size}-byte elements")),
    }
}

/// The array of the file `name` from its bytes: `.npy` by its extension (any case),
/// anything else as NIfTI (`.nii`, or gzip-compressed by its magic number whatever the
/// name says). An error names the file.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Array, DecodeError> {
    let r = if name.to_ascii_lowercase().ends_with(".npy") {
        crate::npy::read(bytes)
    } else {
        crate::nifti::read(bytes)
    };
    r.map_err(|reason| DecodeError {
        file: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The element-by-element reorder the tiled one replaced: element k of the
    /// column-major input lands at its row-major index.
    fn naive<T: Copy + Default>(data: &[T], shape: &[usize]) -> Vec<T> {
        let mut out = vec![T::default(); data.len()];
        for (k, &v) in data.iter().enumerate() {
            let (mut rest, mut at) = (k, 0usize);
            let mut stride = data.len();
            for &n in shape {
                stride /= n;
                at += (rest % n) * stride;
                rest /= n;
            }
            out[at] = v;
        }
        out
    }

    proptest! {
        #[test]
        fn tiled_reorder_equals_the_element_by_element_one(
            shape in prop::collection::vec(1usize..20, 1..6),
            size in prop::sample::select(vec![1usize, 2, 4, 8]),
        ) {
            let n: usize = shape.iter().product();
            let data: Vec<u32> = (0..n as u32).collect();
            prop_assert_eq!(to_c_order(data.clone(), &shape).unwrap(), naive(&data, &shape));
            // The raw-byte form: each element's bytes move together.
            let bytes: Vec<u8> = data
                .iter()
                .flat_map(|&v| (0..size).map(move |b| (v.wrapping_mul(31) as u8).wrapping_add(b as u8)))
                .collect();
            let words: Vec<Vec<u8>> = bytes.chunks(size).map(<[u8]>::to_vec).collect();
            let want: Vec<u8> = naive(&(0..n).collect::<Vec<_>>(), &shape)
                .iter()
                .flat_map(|&k| words[k].clone())
                .collect();
            prop_assert_eq!(c_order_bytes(&bytes, size, &shape).unwrap(), want);
        }
    }

    #[test]
    fn c_order_of_a_column_major_array() {
        // [[0, 1, 2], [3, 4, 5]] stored column-major: 0 3 1 4 2 5.
        assert_eq!(
            to_c_order(vec![0, 3, 1, 4, 2, 5], &[2, 3]),
            Ok(vec![0, 1, 2, 3, 4, 5])
        );
        // A [2, 3, 4] array a[i, j, k] = 100 i + 10 j + k stored with i fastest.
        let shape = [2, 3, 4];
        let mut f = Vec::new();
        for k in 0..4 {
            for j in 0..3 {
                for i in 0..2 {
                    f.push(100 * i + 10 * j + k);
                }
            }
        }
        let c: Vec<i32> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| 100 * i + 10 * j + k)))
            .collect();
        assert_eq!(to_c_order(f, &shape), Ok(c));
        assert_eq!(to_c_order(vec![1, 2, 3], &[1, 3, 1]), Ok(vec![1, 2, 3]));
        // An empty array whose other dimensions overflow as strides: no arithmetic.
        assert_eq!(
            to_c_order(Vec::<u8>::new(), &[0, 1 << 62, 1 << 62]),
            Ok(vec![])
        );
    }

    #[test]
    fn stems_ignore_case_and_need_a_name() {
        assert_eq!(stem("a.NPY").as_deref(), Some("a"));
        assert_eq!(stem("case_1.Nii.Gz").as_deref(), Some("case_1"));
        assert_eq!(stem("b.nii").as_deref(), Some("b"));
        assert_eq!(stem(".npy"), None);
        assert_eq!(stem("x.png"), None);
    }

    #[test]
    fn overflowing_shapes_are_errors() {
        assert!(elements(&[usize::MAX, 2]).is_err());
        assert_eq!(elements(&[2, 3]), Ok(6));
        assert!(dim(-1, "dim").is_err());
    }
}
