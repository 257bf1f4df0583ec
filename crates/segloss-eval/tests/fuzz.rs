//! The readers under hostile input: the files NumPy and nibabel wrote (tests/oracle),
//! mutated (bytes flipped, cut, header fields set to extreme values, inside or outside
//! the gzip stream) and random bytes. Every outcome is an array whose length is its
//! shape's product, or an error naming the file; never a panic, and never an
//! allocation beyond a small multiple of the bytes the file holds (decompressed).
//! A counting allocator measures each call's peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::path::PathBuf;

use proptest::prelude::*;
use segloss_eval::{decode, Array};

/// The system allocator, counting this thread's live bytes and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread-local is gone while a thread is torn down.
    let _ = LIVE.try_with(|l| {
        let v = l.get().saturating_add_signed(delta);
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's
// contract; the counting touches only const-initialised thread-locals (no allocation,
// no re-entry). `unsafe` is unavoidable: GlobalAlloc is an unsafe trait, and a global
// allocator is the only way to see the readers' allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new as isize - l.size() as isize);
        // SAFETY: as `dealloc`, and the caller's new size.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The oracle's files: (name, bytes).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/files");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/oracle/files")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_string();
            p.is_file()
                .then(|| (name, std::fs::read(&p).expect("read")))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 50, "{} seed files", out.len());
    out
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("seed gunzips");
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

/// Header fields worth hitting hard: .npy's version and header length; NIfTI-1's dims,
/// datatype, vox_offset, scaling and magic; NIfTI-2's datatype, dims and vox_offset.
const FIELDS: [usize; 14] = [6, 8, 10, 40, 42, 44, 70, 108, 112, 116, 344, 12, 16, 168];

#[derive(Clone, Debug)]
enum Mutation {
    /// Bytes set at positions (taken modulo the length).
    Flip(Vec<(usize, u8)>),
    /// The file cut to a fraction (per mille) of its length.
    Cut(u16),
    /// A header field (an index into FIELDS) overwritten with 8 bytes.
    Field(usize, u64),
    /// Garbage appended.
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let extreme = prop_oneof![
        any::<u64>(),
        Just(u64::MAX),
        Just(0),
        Just(0x7fff_7fff_7fff_7fff),
        Just(0xffff_ffff),
        Just(1_000_000_000f32.to_bits() as u64),
        Just((-400f32).to_bits() as u64),
        Just(f32::NAN.to_bits() as u64),
    ];
    prop_oneof![
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..8).prop_map(Mutation::Flip),
        (0u16..1000).prop_map(Mutation::Cut),
        (0..FIELDS.len(), extreme).prop_map(|(f, v)| Mutation::Field(f, v)),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
    ]
}

fn apply(mut b: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Flip(at) if !b.is_empty() => {
            let n = b.len();
            for &(i, v) in at {
                b[i % n] = v;
            }
        }
        Mutation::Cut(per_mille) => b.truncate(b.len() * usize::from(*per_mille) / 1000),
        Mutation::Field(f, v) => {
            let at = FIELDS[*f];
            let bytes = v.to_le_bytes();
            for (k, &x) in bytes.iter().enumerate() {
                if let Some(slot) = b.get_mut(at + k) {
                    *slot = x;
                }
            }
        }
        Mutation::Append(more) => b.extend(more),
        Mutation::Flip(_) => {}
    }
    b
}

/// Decodes `bytes` as `name` and checks the outcome; the peak allocation must stay
/// under 32 bytes per byte of (decompressed) input, plus 256 KiB (the inflater's own
/// state is ~75 KiB whatever the input).
fn check(name: &str, bytes: &[u8], data_bytes: usize) -> Result<(), TestCaseError> {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = decode(name, bytes);
    let peak = PEAK.with(Cell::get) - base;
    let bound = 32 * data_bytes.max(bytes.len()) + (256 << 10);
    prop_assert!(
        peak <= bound,
        "{name}: peak allocation {peak} bytes > {bound}"
    );
    match r {
        Ok(a) => {
            let n: usize = a.shape().iter().product();
            let len = match &a {
                Array::Labels(v, _) => v.len(),
                Array::Scores(v, _) => v.len(),
            };
            prop_assert_eq!(n, len, "{}: shape {:?}", name, a.shape());
        }
        Err(e) => prop_assert!(e.to_string().starts_with(name), "{e} does not name {name}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A seed file, mutated: for a `.nii.gz`, inside the gzip stream (the parser sees
    /// the damage) or on the compressed bytes (the inflater does).
    #[test]
    fn mutated_files(seed in any::<prop::sample::Index>(), m in mutation(), inside in any::<bool>()) {
        let seeds = SEEDS.with(|s| s.clone());
        let (name, bytes) = &seeds[seed.index(seeds.len())];
        if name.ends_with(".gz") && inside {
            let raw = apply(gunzip(bytes), &m);
            check(name, &gzip(&raw), raw.len())?;
        } else {
            let data = if name.ends_with(".gz") { gunzip(bytes).len() } else { bytes.len() };
            check(name, &apply(bytes.clone(), &m), data)?;
        }
    }

    /// Random bytes, under each kind of name, and after each format's magic bytes.
    #[test]
    fn random_bytes(body in prop::collection::vec(any::<u8>(), 0..600), kind in 0usize..4) {
        let (name, mut bytes) = match kind {
            0 => ("r.npy", b"\x93NUMPY\x01\x00".to_vec()),
            1 => ("r.npy", b"\x93NUMPY\x02\x00".to_vec()),
            2 => ("r.nii", 348i32.to_le_bytes().to_vec()),
            _ => ("r.nii", Vec::new()),
        };
        bytes.extend(body);
        check(name, &bytes, bytes.len())?;
        check("r.nii.gz", &gzip(&bytes), bytes.len())?;
    }
}

thread_local! {
    static SEEDS: Vec<(String, Vec<u8>)> = seeds();
}

/// A header that claims far more than its data: a small `.nii.gz` whose dims declare
/// 2^31 voxels of int64 must be refused after decompressing what is there, with an
/// allocation of the order of the file, not 16 GiB.
#[test]
fn a_header_claiming_gigabytes_allocates_by_the_data() {
    let (name, bytes) = seeds()
        .into_iter()
        .find(|(n, _)| n == "nii_3d.nii.gz")
        .expect("seed");
    let mut raw = gunzip(&bytes);
    for (k, d) in [3i16, 2048, 1024, 1024].iter().enumerate() {
        raw[40 + 2 * k..42 + 2 * k].copy_from_slice(&d.to_le_bytes());
    }
    raw[70..72].copy_from_slice(&1024i16.to_le_bytes());
    let r = check(&name, &gzip(&raw), raw.len());
    assert!(r.is_ok(), "{r:?}");
    let e = decode(&name, &gzip(&raw)).expect_err("refused");
    assert!(e.to_string().contains("needs"), "{e}");
}
