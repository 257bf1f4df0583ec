//! `evaluate`'s inputs: the supported files of a folder by name, and one file's array
//! (a NumPy `.npy` of any integer or float dtype, or a NIfTI `.nii` / `.nii.gz` label
//! volume).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::AnyResult;

/// A file's array: integer labels or float scores, with its shape.
pub enum Array {
    /// Integer labels and their shape.
    Labels(Vec<i64>, Vec<usize>),
    /// Float scores and their shape.
    Scores(Vec<f32>, Vec<usize>),
}

fn stem(p: &Path) -> Option<String> {
    let name = p.file_name()?.to_str()?;
    [".nii.gz", ".nii", ".npy"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .map(str::to_string)
}

/// The supported files of `dir` by name.
pub fn files(dir: &Path) -> AnyResult<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e?.path();
        if let Some(s) = stem(&p) {
            if let Some(old) = out.insert(s.clone(), p.clone()) {
                return Err(
                    format!("{} and {}: two files named {s}", old.display(), p.display()).into(),
                );
            }
        }
    }
    Ok(out)
}

fn read_npy(p: &Path) -> AnyResult<Array> {
    use npyz::{DType, TypeChar};
    let bytes = std::fs::read(p)?;
    let f = npyz::NpyFile::new(&bytes[..])?;
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

fn read_nifti(p: &Path) -> AnyResult<Array> {
    use nifti::{NiftiObject, NiftiType, NiftiVolume, ReaderOptions};
    let obj = ReaderOptions::new().read_file(p)?;
    let dtype = obj.header().data_type()?;
    let vol = obj.into_volume();
    let shape: Vec<usize> = vol.dim().iter().map(|&d| usize::from(d)).collect();
    let v: Vec<i64> = match dtype {
        NiftiType::Uint8 => vol
            .into_nifti_typed_data::<u8>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int8 => vol
            .into_nifti_typed_data::<i8>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int16 => vol
            .into_nifti_typed_data::<i16>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Uint16 => vol
            .into_nifti_typed_data::<u16>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int32 => vol
            .into_nifti_typed_data::<i32>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Uint32 => vol
            .into_nifti_typed_data::<u32>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int64 => vol.into_nifti_typed_data::<i64>()?,
        other => {
            return Err(format!("NIfTI data type {other:?}: an integer label map expected").into())
        }
    };
    Ok(Array::Labels(v, shape))
}

/// One file's array; an error names the file.
pub fn read(p: &Path) -> AnyResult<Array> {
    let name = p.to_string_lossy();
    let r = if name.ends_with(".npy") {
        read_npy(p)
    } else {
        read_nifti(p)
    };
    r.map_err(|e| format!("{}: {e}", p.display()).into())
}
