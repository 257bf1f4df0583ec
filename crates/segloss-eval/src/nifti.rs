//! NIfTI-1 and NIfTI-2 single-file volumes (`.nii`, and `.nii.gz` by gzip's magic
//! number), read as nibabel's `np.asarray(img.dataobj)` reads them: the shape is
//! `dim[1..=dim[0]]`, x fastest on disk (returned in C order: `a[x, y, z]`), either byte
//! order, the data from `vox_offset`, scaled by `scl_slope` / `scl_inter` when the slope
//! is finite and non-zero. Every value must then be an integer label (integer or float
//! data types). A `.nii.gz` is decompressed only as far as the header's shape needs, and
//! the buffer grows with the bytes actually decompressed.

use std::io::Read;

use crate::decode::{c_order_bytes, dim, elements, ints, words, Array, Res};

/// The header fields segloss reads.
struct Header {
    big: bool,
    shape: Vec<usize>,
    datatype: i16,
    offset: usize,
    slope: f64,
    inter: f64,
}

/// Field readers over a header of either byte order.
struct Fields<'a> {
    b: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn raw<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut r: [u8; N] = self.b[at..at + N].try_into().unwrap_or([0; N]);
        if self.big {
            r.reverse();
        }
        r
    }
    fn i16(&self, at: usize) -> i16 {
        i16::from_le_bytes(self.raw(at))
    }
    fn i64(&self, at: usize) -> i64 {
        i64::from_le_bytes(self.raw(at))
    }
    fn f32(&self, at: usize) -> f32 {
        f32::from_le_bytes(self.raw(at))
    }
    fn f64(&self, at: usize) -> f64 {
        f64::from_le_bytes(self.raw(at))
    }
}

/// The header's size (348 for NIfTI-1, 540 for NIfTI-2) and byte order, from its first
/// four bytes.
fn kind(first: &[u8]) -> Res<(usize, bool)> {
    let w: [u8; 4] = first
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or("too short for a NIfTI header")?;
    match (i32::from_le_bytes(w), i32::from_be_bytes(w)) {
        (348, _) => Ok((348, false)),
        (_, 348) => Ok((348, true)),
        (540, _) => Ok((540, false)),
        (_, 540) => Ok((540, true)),
        _ => Err("not a NIfTI file (sizeof_hdr is neither 348 nor 540)".into()),
    }
}

fn header(b: &[u8]) -> Res<Header> {
    let (size, big) = kind(b)?;
    if b.len() < size {
        return Err(format!("a {size}-byte header, the file holds {}", b.len()));
    }
    let f = Fields { b, big };
    let (dims, datatype, offset, slope, inter, min_offset): ([i64; 8], _, f64, _, _, _) = if size
        == 348
    {
        match &b[344..348] {
            b"n+1\0" => {}
            b"ni1\0" => return Err("a header-only NIfTI pair (.hdr/.img) is not supported".into()),
            _ => return Err("NIfTI-1 magic 'n+1' missing".into()),
        }
        let dims = std::array::from_fn(|k| i64::from(f.i16(40 + 2 * k)));
        let (slope, inter) = (f.f32(112).into(), f.f32(116).into());
        (dims, f.i16(70), f.f32(108).into(), slope, inter, 352)
    } else {
        // The magic, then an end-of-line check that nibabel also accepts as zeros.
        if &b[4..8] != b"n+2\0" || !matches!(&b[8..12], b"\r\n\x1a\n" | b"\0\0\0\0") {
            return Err("NIfTI-2 magic 'n+2' missing".into());
        }
        let dims = std::array::from_fn(|k| f.i64(16 + 8 * k));
        (
            dims,
            f.i16(12),
            f.i64(168) as f64,
            f.f64(176),
            f.f64(184),
            544,
        )
    };
    let nd = usize::try_from(dims[0])
        .ok()
        .filter(|n| (1..=7).contains(n))
        .ok_or_else(|| format!("dim[0] = {} (1 to 7 dimensions expected)", dims[0]))?;
    let shape = dims[1..=nd]
        .iter()
        .map(|&d| match d {
            d if d < 1 => Err(format!("a dimension of size {d} in {:?}", &dims[1..=nd])),
            d => dim(d.into(), "dimension"),
        })
        .collect::<Res<Vec<usize>>>()?;
    // nibabel reads from int(vox_offset), and refuses an offset inside the header.
    if !(offset.is_finite() && offset >= f64::from(min_offset) && offset < 2f64.powi(53)) {
        return Err(format!(
            "vox_offset {offset} (at least {min_offset}, within the file, expected)"
        ));
    }
    Ok(Header {
        big,
        shape,
        datatype,
        offset: dim(offset as i128, "vox_offset")?,
        slope,
        inter,
    })
}

/// A data type's element (integer: signed, bytes; or float: bytes) and name, for the
/// types a label map can have.
fn data_type(code: i16) -> Res<(Elem, &'static str)> {
    use Elem::{Float, Int};
    Ok(match code {
        2 => (Int(false, 1), "uint8"),
        256 => (Int(true, 1), "int8"),
        4 => (Int(true, 2), "int16"),
        512 => (Int(false, 2), "uint16"),
        8 => (Int(true, 4), "int32"),
        768 => (Int(false, 4), "uint32"),
        1024 => (Int(true, 8), "int64"),
        1280 => (Int(false, 8), "uint64"),
        16 => (Float(4), "float32"),
        64 => (Float(8), "float64"),
        c => {
            return Err(format!(
                "NIfTI data type {c} not supported (an integer or float label map expected)"
            ))
        }
    })
}

/// A stored element: an integer (signed, bytes) or a float (bytes).
#[derive(Clone, Copy)]
enum Elem {
    Int(bool, usize),
    Float(usize),
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::Int(_, s) | Elem::Float(s) => s,
        }
    }
}

/// The file's bytes up to `need`: a `.nii` as it is, a `.nii.gz` decompressed no
/// further than that (the buffer grows with what is decompressed, not with `need`).
fn inflate(bytes: &[u8], need: usize) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(need).unwrap_or(u64::MAX);
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(out)
}

/// The stored values as labels: integers as they are, floats (and scaled values) only
/// where they are whole numbers.
fn labels(h: &Header, elem: Elem, data: &[u8]) -> Res<Vec<i64>> {
    let big = h.big;
    let ints: Option<Vec<i64>> = match elem {
        // data_type gives 1, 2, 4 or 8 bytes: `ints` knows each.
        Elem::Int(signed, size) => Some(ints(data, big, signed, size).ok_or("integer size")??),
        Elem::Float(_) => None,
    };
    // nibabel: a zero or non-finite slope means "no scaling"; a valid slope with a
    // non-finite intercept is an error.
    let scaled = h.slope.is_finite() && h.slope != 0.0;
    if scaled && !h.inter.is_finite() {
        return Err(format!("scl_slope {} with scl_inter {}", h.slope, h.inter));
    }
    let identity = !scaled || (h.slope == 1.0 && h.inter == 0.0);
    let (slope, inter) = if identity {
        (1.0, 0.0)
    } else {
        (h.slope, h.inter)
    };
    let whole = |raw: f64| {
        let v = raw * slope + inter;
        if v.fract() == 0.0 && v.abs() < 2f64.powi(63) {
            Ok(v as i64)
        } else if identity {
            Err(format!("a float value {v}: integer labels expected"))
        } else {
            Err(format!(
                "a stored value {raw} scales (scl_slope {slope}, scl_inter {inter}) to \
                 {v}: integer labels expected"
            ))
        }
    };
    // In place: the widened values are the output (no second copy of the volume).
    match ints {
        Some(v) if identity => Ok(v),
        Some(mut v) => {
            for x in v.iter_mut() {
                *x = whole(*x as f64)?;
            }
            Ok(v)
        }
        None if elem.size() == 4 => words(data, big, f32::from_le_bytes)?
            .into_iter()
            .map(|x| whole(x.into()))
            .collect(),
        None => words(data, big, f64::from_le_bytes)?
            .into_iter()
            .map(whole)
            .collect(),
    }
}

/// A NIfTI file's label volume, in C order.
pub(crate) fn read(bytes: &[u8]) -> Res<Array> {
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    // The header first (at most 540 bytes), then the data it declares.
    let head = if gz {
        inflate(bytes, 540)?
    } else {
        bytes[..bytes.len().min(540)].to_vec()
    };
    let h = header(&head)?;
    let (elem, name) = data_type(h.datatype)?;
    let size = elem.size();
    let n = elements(&h.shape)?;
    let need = n
        .checked_mul(size)
        .and_then(|d| d.checked_add(h.offset))
        .ok_or_else(|| format!("shape {:?} of {name}: its byte count overflows", h.shape))?;
    let v = if gz {
        // The inflated bytes are dropped as soon as the labels are made.
        let body = inflate(bytes, need)?;
        stored(&h, elem, &body, need, name, true)?
    } else {
        stored(&h, elem, bytes, need, name, false)?
    };
    Ok(Array::Labels(v, h.shape))
}

/// The labels stored in `all[offset..need]`, or an error when the file holds less.
fn stored(h: &Header, elem: Elem, all: &[u8], need: usize, name: &str, gz: bool) -> Res<Vec<i64>> {
    if all.len() < need {
        return Err(format!(
            "shape {:?} of {name} from vox_offset {} needs {need} bytes, the {}file holds {}",
            h.shape,
            h.offset,
            if gz { "decompressed " } else { "" },
            all.len()
        ));
    }
    // NIfTI stores x fastest: reordered to C order while still in bytes.
    let data = c_order_bytes(&all[h.offset..need], elem.size(), &h.shape)?;
    labels(h, elem, &data)
}
