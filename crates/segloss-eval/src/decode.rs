//! One file's array from its bytes: a NumPy `.npy` of any integer or float dtype, or a
//! NIfTI `.nii` / `.nii.gz` label volume.

use std::io::Read;

/// A file's array: integer labels or float scores, with its shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// Integer labels and their shape.
    Labels(Vec<i64>, Vec<usize>),
    /// Float scores and their shape.
    Scores(Vec<f32>, Vec<usize>),
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The name a file is paired by (its name without `.npy`, `.nii` or `.nii.gz`), or
/// `None` for a file of another kind.
pub fn stem(file_name: &str) -> Option<String> {
    [".nii.gz", ".nii", ".npy"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .map(str::to_string)
}

fn npy(bytes: &[u8]) -> Res<Array> {
    use npyz::{DType, TypeChar};
    let f = npyz::NpyFile::new(bytes)?;
    let shape: Vec<usize> = f.shape().iter().map(|&d| d as usize).collect();
    if f.order() == npyz::Order::Fortran {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let DType::Plain(t) = f.dtype() else {
        return Err("a structured dtype, integers or floats expected".into());
    };
    let labels = |v: Vec<i64>| Ok(Array::Labels(v, shape.clone()));
    match (t.type_char(), t.size_field()) {
        (TypeChar::Int, 1) => labels(f.into_vec::<i8>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Int, 2) => labels(f.into_vec::<i16>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Int, 4) => labels(f.into_vec::<i32>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Int, 8) => labels(f.into_vec::<i64>()?),
        (TypeChar::Uint, 1) => labels(f.into_vec::<u8>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Uint, 2) => labels(f.into_vec::<u16>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Uint, 4) => labels(f.into_vec::<u32>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Uint, 8) => labels(
            f.into_vec::<u64>()?
                .into_iter()
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
        ),
        (TypeChar::Float, 4) => Ok(Array::Scores(f.into_vec::<f32>()?, shape)),
        (TypeChar::Float, 8) => Ok(Array::Scores(
            f.into_vec::<f64>()?.into_iter().map(|v| v as f32).collect(),
            shape,
        )),
        _ => Err(format!("dtype {t} not supported (integers or floats)").into()),
    }
}

fn nifti_volume(bytes: &[u8]) -> Res<Array> {
    use nifti::{InMemNiftiObject, NiftiObject, NiftiType, NiftiVolume};
    // gzip's magic number: a .nii.gz whatever its name says.
    let obj = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut raw)?;
        InMemNiftiObject::from_reader(&raw[..])?
    } else {
        InMemNiftiObject::from_reader(bytes)?
    };
    let dtype = obj.header().data_type()?;
    let vol = obj.into_volume();
    let shape: Vec<usize> = vol.dim().iter().map(|&d| usize::from(d)).collect();
    fn wide<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
        v.into_iter().map(Into::into).collect()
    }
    let v: Vec<i64> = match dtype {
        NiftiType::Uint8 => wide(vol.into_nifti_typed_data::<u8>()?),
        NiftiType::Int8 => wide(vol.into_nifti_typed_data::<i8>()?),
        NiftiType::Int16 => wide(vol.into_nifti_typed_data::<i16>()?),
        NiftiType::Uint16 => wide(vol.into_nifti_typed_data::<u16>()?),
        NiftiType::Int32 => wide(vol.into_nifti_typed_data::<i32>()?),
        NiftiType::Uint32 => wide(vol.into_nifti_typed_data::<u32>()?),
        NiftiType::Int64 => vol.into_nifti_typed_data::<i64>()?,
        other => {
            return Err(format!("NIfTI data type {other:?}: an integer label map expected").into())
        }
    };
    Ok(Array::Labels(v, shape))
}

/// The array of the file `name` (`.npy`, else NIfTI) from its bytes; an error names the
/// file.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Array, String> {
    let r = if name.ends_with(".npy") {
        npy(bytes)
    } else {
        nifti_volume(bytes)
    };
    r.map_err(|e| format!("{name}: {e}"))
}
