"""Writes the readers' differential test files with the formats' own tools, and what
those tools read back from them (the oracle):

    python3 crates/segloss-eval/tests/oracle/make.py   (NumPy >= 1.17, nibabel >= 3)

- files/*.npy: written by numpy.save / numpy.lib.format.write_array (every boolean,
  integer and float dtype NumPy saves, both byte orders, C and Fortran order, format
  versions 1.0, 2.0 and 3.0);
- files/*.nii, files/*.nii.gz: written by nibabel (NIfTI-1 and NIfTI-2, 2D and 3D, every
  integer and float data type, big-endian, vox_offset past the header, scl_slope /
  scl_inter), and a few that nibabel refuses or that are not label maps;
- files/dataset/: one small dataset in three forms (pred/*.npy against target_npy/*.npy,
  target_nii/*.nii and target_niigz/*.nii.gz): `segloss evaluate` must give the same
  metrics on every pair;
- manifest.json: for each file, what np.load / np.asarray(nibabel.load(f).dataobj)
  returned (shape, kind, values in C order) or that the oracle refused it.

The Rust test tests/oracle.rs decodes every file and compares element by element.
"""

import io
import json
import os
import struct

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
rng = np.random.default_rng(20261207)
manifest = []


def oracle_npy(path):
    return np.load(path, allow_pickle=False)


def oracle_nii(path):
    return np.asarray(nib.load(path).dataobj)


def record(name, read, note):
    path = os.path.join(OUT, name)
    entry = {"file": name, "note": note}
    try:
        a = read(path)
    except Exception as e:  # the oracle refuses the file
        entry["error"] = f"{type(e).__name__}: {e}"
        manifest.append(entry)
        return
    if a.dtype.kind == "f" and name.endswith(".npy"):
        entry["kind"] = "scores"
        entry["values"] = [float(np.float32(v)) for v in a.ravel(order="C")]
    elif a.dtype.kind == "f":
        # nibabel's scaled or float data: labels only where whole numbers.
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            entry["error"] = "not integer labels"
            manifest.append(entry)
            return
        entry["kind"] = "labels"
        entry["values"] = [int(v) for v in a.ravel(order="C")]
    else:
        entry["kind"] = "labels"
        entry["values"] = [int(v) for v in a.ravel(order="C")]
    entry["shape"] = list(a.shape)
    manifest.append(entry)


def labels(shape, hi, dtype):
    return rng.integers(0, hi, size=shape).astype(dtype)


def npy_files():
    shape = (3, 5)
    for dt in ["|b1", "|i1", "|u1", "<i2", ">i2", "<u2", ">u2", "<i4", ">i4", "<u4",
               "<i8", ">i8", "<u8", ">u8"]:
        a = labels(shape, 2 if dt == "|b1" else 7, np.dtype(dt))
        if dt[1] == "i":
            a[0, 0] = -3  # a negative label: the reader keeps it (evaluate refuses it)
        name = f"npy_{dt[1:]}_{'be' if dt[0] == '>' else 'le'}.npy"
        np.save(os.path.join(OUT, name), a)
        record(name, oracle_npy, f"np.save of a {shape} {np.dtype(dt)}")
    for dt in ["<f2", ">f2", "<f4", ">f4", "<f8", ">f8"]:
        a = rng.standard_normal((4, 2, 3)).astype(np.dtype(dt))
        a[0, 0, 0] = 1e-6  # a float16 subnormal
        name = f"npy_{dt[1:]}_{'be' if dt[0] == '>' else 'le'}.npy"
        np.save(os.path.join(OUT, name), a)
        record(name, oracle_npy, "np.save of float scores [C, H, W]")
    a = np.asfortranarray(labels((4, 3, 2), 5, np.int32))
    np.save(os.path.join(OUT, "npy_fortran_3d.npy"), a)
    record("npy_fortran_3d.npy", oracle_npy, "np.save of a Fortran-ordered array")
    a = np.asfortranarray(rng.random((3, 4, 5)).astype(np.float32))
    np.save(os.path.join(OUT, "npy_fortran_scores.npy"), a)
    record("npy_fortran_scores.npy", oracle_npy, "Fortran-ordered scores")
    a = labels((2, 3, 4, 5), 9, np.uint16)
    for version in [(1, 0), (2, 0), (3, 0)]:
        name = f"npy_v{version[0]}.npy"
        with open(os.path.join(OUT, name), "wb") as f:
            np.lib.format.write_array(f, a, version=version)
        record(name, oracle_npy, f"format version {version}")
    a = labels((6,), 4, np.int64)
    np.save(os.path.join(OUT, "npy_1d.npy"), a)
    record("npy_1d.npy", oracle_npy, "a 1-D label map")
    # Truncated data: NumPy refuses it.
    b = open(os.path.join(OUT, "npy_v1.npy"), "rb").read()
    open(os.path.join(OUT, "npy_truncated.npy"), "wb").write(b[:-7])
    record("npy_truncated.npy", oracle_npy, "the last 7 bytes cut")
    # A complex dtype: not a label map or scores.
    np.save(os.path.join(OUT, "npy_complex.npy"), np.zeros(3, np.complex64))
    manifest.append({"file": "npy_complex.npy", "error": "complex", "note": "complex64"})


def nii(name, a, affine=None, nifti2=False, big=False, offset=None, slope=None,
        dtype=None, note=""):
    kls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    hdr = (nib.Nifti2Header if nifti2 else nib.Nifti1Header)(endianness=">" if big else "<")
    img = kls(a, np.eye(4) if affine is None else affine, header=hdr)
    # A passed header would impose its own default (float32): the array's dtype, or the
    # one asked for.
    img.set_data_dtype(a.dtype if dtype is None else dtype)
    if slope is not None:
        img.header.set_slope_inter(*slope)
    if offset is not None:
        img.header.set_data_offset(offset)
    path = os.path.join(OUT, name)
    nib.save(img, path)
    if slope is not None:
        # nibabel's writer chooses its own scaling for some dtypes: set it in the file.
        fix_slope(path, slope, nifti2, big)
    record(name, oracle_nii, note)


def fix_slope(path, slope, nifti2, big):
    gz = path.endswith(".gz")
    import gzip
    raw = (gzip.open if gz else open)(path, "rb").read()
    e = ">" if big else "<"
    b = bytearray(raw)
    if nifti2:
        b[176:192] = struct.pack(e + "dd", *slope)
    else:
        b[112:120] = struct.pack(e + "ff", *slope)
    (gzip.open if gz else open)(path, "wb").write(bytes(b))


def nifti_files():
    a2 = labels((2, 3), 3, np.uint8)
    nii("nii_2d_2x3.nii.gz", a2, note="the issue's 2x3 map")
    nii("nii_2d.nii", labels((7, 5), 4, np.uint8), note="2D .nii")
    a3 = labels((6, 5, 4), 4, np.uint8)
    nii("nii_3d.nii", a3, note="3D .nii")
    nii("nii_3d.nii.gz", a3, note="3D .nii.gz")
    for dt in [np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
               np.float32, np.float64]:
        a = labels((4, 3, 2), 6, dt)
        nii(f"nii_{np.dtype(dt).name}.nii", a, dtype=dt, note=f"{np.dtype(dt).name} labels")
    nii("nii_big_endian.nii", labels((5, 4, 3), 6, np.int16), big=True, dtype=np.int16,
        note="big-endian header and data")
    nii("nii_big_endian_f32.nii.gz", labels((3, 4), 3, np.float32), big=True,
        dtype=np.float32, note="big-endian float32 labels, gzipped")
    nii("nii_offset_368.nii", labels((4, 5), 3, np.uint8), offset=368,
        note="vox_offset 368: 16 bytes of padding after the header")
    nii("nii_offset_1024.nii.gz", labels((4, 5, 3), 3, np.int16), offset=1024,
        dtype=np.int16, note="vox_offset 1024, gzipped")
    nii("nii_slope2.nii", labels((4, 3), 3, np.uint8), slope=(2.0, 0.0), dtype=np.uint8,
        note="scl_slope 2: labels 0, 2, 4")
    nii("nii_slope_inter.nii.gz", labels((3, 3, 2), 3, np.int16), slope=(1.0, 1.0),
        dtype=np.int16, note="scl_inter 1: labels shifted by one")
    nii("nii_slope_half.nii", labels((2, 4), 3, np.uint8), slope=(0.5, 0.0),
        dtype=np.uint8, note="scl_slope 0.5: odd values scale to halves (refused)")
    nii("nii2_3d.nii", labels((5, 3, 2), 4, np.int32), nifti2=True, dtype=np.int32,
        note="NIfTI-2")
    nii("nii2_3d_be.nii.gz", labels((3, 2, 4), 4, np.uint8), nifti2=True, big=True,
        dtype=np.uint8, note="NIfTI-2, big-endian, gzipped")
    nii("nii_4d.nii", labels((3, 2, 2, 2), 3, np.uint8), note="4-D")
    # nibabel refuses an offset inside the header; segloss must refuse it too.
    b = bytearray(open(os.path.join(OUT, "nii_2d.nii"), "rb").read())
    b[108:112] = struct.pack("<f", 100.0)
    open(os.path.join(OUT, "nii_offset_100.nii"), "wb").write(bytes(b))
    record("nii_offset_100.nii", oracle_nii, "vox_offset 100 (inside the header)")
    b = bytearray(open(os.path.join(OUT, "nii_3d.nii"), "rb").read())
    open(os.path.join(OUT, "nii_truncated.nii"), "wb").write(bytes(b[:-9]))
    record("nii_truncated.nii", oracle_nii, "the last 9 bytes cut")


def dataset():
    """One dataset in .npy and NIfTI forms (asymmetric shapes, so a transposed reader
    scores differently)."""
    base = os.path.join(OUT, "dataset")
    for d in ["pred", "target_npy", "target_nii", "target_niigz"]:
        os.makedirs(os.path.join(base, d), exist_ok=True)
    shapes = {"a": (2, 3), "b": (7, 5), "c": (6, 5, 4), "d": (3, 9, 2)}
    for name, shape in shapes.items():
        t = labels(shape, 3, np.uint8)
        p = t.copy()
        flip = rng.random(shape) < 0.3
        p[flip] = rng.integers(0, 3, size=int(flip.sum()))
        np.save(os.path.join(base, "pred", f"{name}.npy"), p)
        np.save(os.path.join(base, "target_npy", f"{name}.npy"), t)
        nib.save(nib.Nifti1Image(t, np.eye(4)), os.path.join(base, "target_nii", f"{name}.nii"))
        nib.save(nib.Nifti1Image(t, np.eye(4)),
                 os.path.join(base, "target_niigz", f"{name}.nii.gz"))


def review_files():
    """Cases found in review (issue 34): NIfTI-2 whose end-of-line check is zeros (nibabel
    reads it with a warning), a header extension (data after it, at vox_offset), and a
    .npy header whose repeated key Python resolves to the last value."""
    b = bytearray(open(os.path.join(OUT, "nii2_3d.nii"), "rb").read())
    b[8:12] = b"\0" * 4
    open(os.path.join(OUT, "nii2_eol_zero.nii"), "wb").write(bytes(b))
    record("nii2_eol_zero.nii", oracle_nii, "NIfTI-2, eol_check zeros")
    img = nib.Nifti1Image(labels((3, 4, 2), 3, np.uint8), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment, 16+ B"))
    nib.save(img, os.path.join(OUT, "nii_extension.nii.gz"))
    record("nii_extension.nii.gz", oracle_nii, "a header extension before the data")
    h = b"{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), 'fortran_order': False}\n"
    b = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + bytes(range(6))
    open(os.path.join(OUT, "npy_repeated_key.npy"), "wb").write(b)
    record("npy_repeated_key.npy", oracle_npy, "fortran_order given twice (the last wins)")


def tile_files():
    """Arrays with axes longer than the readers' 8 × 8 reorder tiles and not multiples of
    8 (issue 35: NIfTI and Fortran-order data are reordered tile by tile, on the raw
    elements of 1, 2, 4 and 8 bytes), in 2D, 3D and 4D."""
    nii("nii_tiles_u8.nii.gz", labels((19, 11, 10), 5, np.uint8), note="3D uint8, 19×11×10")
    nii("nii_tiles_i16.nii", labels((9, 17, 3), 7, np.int16), note="3D int16, 9×17×3")
    nii("nii_tiles_u32_2d.nii", labels((21, 10), 9, np.uint32), note="2D uint32, 21×10")
    nii("nii_tiles_i64_4d.nii.gz", labels((10, 3, 2, 9), 4, np.int64), note="4D int64")
    a = np.asfortranarray(labels((17, 9, 11), 6, np.int64))
    np.save(os.path.join(OUT, "npy_fortran_tiles.npy"), a)
    record("npy_fortran_tiles.npy", oracle_npy, "Fortran-ordered int64, 17×9×11")
    s = np.asfortranarray(rng.standard_normal((12, 9, 16)).astype(np.float32))
    np.save(os.path.join(OUT, "npy_fortran_tiles_f4.npy"), s)
    record("npy_fortran_tiles_f4.npy", oracle_npy, "Fortran-ordered float32 scores, 12×9×16")


def main():
    os.makedirs(OUT, exist_ok=True)
    npy_files()
    nifti_files()
    dataset()
    review_files()
    tile_files()
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump({"numpy": np.__version__, "nibabel": nib.__version__, "files": manifest},
                  f, indent=0)
        f.write("\n")
    print(f"{len(manifest)} files, numpy {np.__version__}, nibabel {nib.__version__}")


if __name__ == "__main__":
    main()
