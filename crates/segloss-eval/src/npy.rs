//! NumPy's `.npy` format (versions 1.0, 2.0 and 3.0), read as `numpy.load` reads it:
//! booleans and integers of 1 to 8 bytes as labels, `float16` / `float32` / `float64`
//! as scores (rounded to f32), either byte order, C or Fortran order (returned in C
//! order). The header's dict is parsed here (a Python literal of a few kinds), so that
//! every size is checked against the file before anything is allocated.

use crate::decode::{dim, elements, ints, to_c_order, words, Array, Res};

/// A Python literal of the kinds a `.npy` header holds.
#[derive(Debug, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// A recursive-descent parser of the header's dict; nesting is bounded (a hostile
/// header cannot exhaust the stack).
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

const MAX_DEPTH: usize = 8;

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.at += usize::from(hit);
        hit
    }

    fn value(&mut self, depth: usize) -> Res<Lit> {
        if depth > MAX_DEPTH {
            return Err("header: nested too deeply".into());
        }
        match self.peek() {
            Some(b'{') => self.seq(b'}', depth, true),
            Some(b'(') => self.seq(b')', depth, false),
            Some(b'[') => self.seq(b']', depth, false),
            Some(q @ (b'\'' | b'"')) => {
                self.at += 1;
                let start = self.at;
                while self.at < self.s.len() && self.s[self.at] != q {
                    self.at += 1;
                }
                if self.at == self.s.len() {
                    return Err("header: an unterminated string".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
                self.at += 1;
                Ok(Lit::Str(text))
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'-' => {
                let start = self.at;
                while self.at < self.s.len()
                    && (self.s[self.at].is_ascii_alphanumeric() || self.s[self.at] == b'-')
                {
                    self.at += 1;
                }
                let word = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                match word {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    // Python 2 wrote long integers with an `L`.
                    w => w
                        .trim_end_matches('L')
                        .parse()
                        .map(Lit::Int)
                        .map_err(|_| format!("header: unexpected `{w}`")),
                }
            }
            Some(c) => Err(format!("header: unexpected `{}`", char::from(c))),
            None => Err("header: ends early".into()),
        }
    }

    /// A tuple, list or dict whose opening bracket is next.
    fn seq(&mut self, close: u8, depth: usize, dict: bool) -> Res<Lit> {
        self.at += 1;
        let (mut items, mut pairs) = (Vec::new(), Vec::new());
        loop {
            if self.eat(close) {
                break;
            }
            let v = self.value(depth + 1)?;
            if dict {
                if !self.eat(b':') {
                    return Err("header: `:` expected in the dict".into());
                }
                pairs.push((v, self.value(depth + 1)?));
            } else {
                items.push(v);
            }
            if !self.eat(b',') {
                if self.eat(close) {
                    break;
                }
                return Err(format!("header: `,` or `{}` expected", char::from(close)));
            }
        }
        Ok(if dict {
            Lit::Dict(pairs)
        } else {
            Lit::Seq(items)
        })
    }
}

/// The header's three keys.
struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
}

fn header(text: &[u8]) -> Res<Header> {
    let mut p = Parser { s: text, at: 0 };
    let Lit::Dict(pairs) = p.value(0)? else {
        return Err("header: a dict expected".into());
    };
    // A Python dict literal keeps the last of repeated keys.
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == Lit::Str(key.into()))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("header: no '{key}'"))
    };
    let descr = match get("descr")? {
        Lit::Str(s) => s.clone(),
        _ => return Err("a structured dtype: integers, booleans or floats expected".into()),
    };
    let Lit::Bool(fortran) = get("fortran_order")? else {
        return Err("header: 'fortran_order' is not a bool".into());
    };
    let Lit::Seq(dims) = get("shape")? else {
        return Err("header: 'shape' is not a tuple".into());
    };
    let shape = dims
        .iter()
        .map(|d| match d {
            Lit::Int(v) => dim(*v, "dimension"),
            _ => Err("header: a dimension is not an integer".into()),
        })
        .collect::<Res<Vec<usize>>>()?;
    Ok(Header {
        descr,
        fortran: *fortran,
        shape,
    })
}

/// The dict's text: after the magic string, the version and the header's length, each
/// checked against the file's length.
fn header_text(bytes: &[u8]) -> Res<(&[u8], &[u8])> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err("not a .npy file (no \\x93NUMPY magic string)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() < 12 => return Err("truncated .npy header".into()),
        2 | 3 => {
            let l = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (dim(l.into(), "header length")?, 12)
        }
        v => return Err(format!(".npy format version {v} not supported (1, 2 or 3)")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            format!(
                "the header declares {len} bytes, the file holds {}",
                bytes.len() - start
            )
        })?;
    Ok((&bytes[start..end], &bytes[end..]))
}

/// An IEEE half's value.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let (s, e, m) = (
        u32::from(h >> 15) << 31,
        u32::from((h >> 10) & 0x1f),
        u32::from(h & 0x3ff),
    );
    let bits = match (e, m) {
        (0, 0) => s,
        (0, _) => {
            // Subnormal: normalise the mantissa.
            let (mut e, mut m) = (113u32, m);
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            s | (e << 23) | ((m & 0x3ff) << 13)
        }
        (31, _) => s | (0xff << 23) | (m << 13),
        _ => s | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// A `.npy` file's array, in C order.
pub(crate) fn read(bytes: &[u8]) -> Res<Array> {
    let (text, data) = header_text(bytes)?;
    let h = header(text)?;
    let d = h.descr.as_bytes();
    if d.len() < 3 {
        return Err(format!("dtype '{}' not supported", h.descr));
    }
    let big = match d[0] {
        b'>' => true,
        b'<' | b'|' => false,
        b'=' => cfg!(target_endian = "big"),
        _ => return Err(format!("dtype '{}': no byte order", h.descr)),
    };
    // Bytes, not `str` slicing: a descr may hold any character.
    let size: usize = std::str::from_utf8(&d[2..])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("dtype '{}' not supported", h.descr))?;
    let n = elements(&h.shape)?;
    let need = n
        .checked_mul(size)
        .filter(|&b| b <= data.len())
        .ok_or_else(|| {
            format!(
                "shape {:?} of '{}' needs {n} × {size} bytes, the file holds {}",
                h.shape,
                h.descr,
                data.len()
            )
        })?;
    let data = &data[..need];
    let unsupported = || {
        format!(
            "dtype '{}' not supported (booleans, integers or floats)",
            h.descr
        )
    };
    let labels = |v: Vec<i64>| Array::Labels(v, h.shape.clone());
    let scores = |v: Vec<f32>| Array::Scores(v, h.shape.clone());
    let array = match (d[1], size) {
        (b'b', 1) => labels(words(data, false, |b: [u8; 1]| i64::from(b[0] != 0))?),
        (k @ (b'i' | b'u'), _) => match ints(data, big, k == b'i', size) {
            Some(v) => labels(v?),
            None => return Err(unsupported()),
        },
        (b'f', 2) => scores(words(data, big, |b| f16_to_f32(u16::from_le_bytes(b)))?),
        (b'f', 4) => scores(words(data, big, f32::from_le_bytes)?),
        (b'f', 8) => scores(words(data, big, |b| f64::from_le_bytes(b) as f32)?),
        _ => return Err(unsupported()),
    };
    Ok(match (array, h.fortran) {
        (a, false) => a,
        (Array::Labels(v, s), true) => Array::Labels(to_c_order(v, &s)?, s),
        (Array::Scores(v, s), true) => Array::Scores(to_c_order(v, &s)?, s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let text = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}\n");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((text.len() as u16).to_le_bytes());
        b.extend(text.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn reads_byte_orders_fortran_order_and_halves() {
        let be: Vec<u8> = [1i16, -2, 3].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            read(&npy(">i2", false, "(3,)", &be)),
            Ok(Array::Labels(vec![1, -2, 3], vec![3]))
        );
        // [[0, 1, 2], [3, 4, 5]] in Fortran order.
        let f = npy("|u1", true, "(2, 3)", &[0, 3, 1, 4, 2, 5]);
        assert_eq!(
            read(&f),
            Ok(Array::Labels(vec![0, 1, 2, 3, 4, 5], vec![2, 3]))
        );
        let h: Vec<u8> = [0x3c00u16, 0xc000, 0x0001]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let Ok(Array::Scores(v, _)) = read(&npy("<f2", false, "(3,)", &h)) else {
            panic!()
        };
        assert_eq!(v, vec![1.0, -2.0, 2f32.powi(-24)]);
        let b = npy("|b1", false, "(2,)", &[0, 1]);
        assert_eq!(read(&b), Ok(Array::Labels(vec![0, 1], vec![2])));
    }

    #[test]
    fn repeated_keys_take_the_last_as_python_does() {
        // fortran_order True, then False: NumPy reads C order.
        let text =
            "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), 'fortran_order': False}\n";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((text.len() as u16).to_le_bytes());
        b.extend(text.as_bytes());
        b.extend([0, 1, 2, 3, 4, 5]);
        assert_eq!(
            read(&b),
            Ok(Array::Labels(vec![0, 1, 2, 3, 4, 5], vec![2, 3]))
        );
        // A non-ASCII dtype is refused, not sliced inside a character.
        let odd = npy("<\u{e9}4", false, "(1,)", &[0; 8]);
        assert!(read(&odd).unwrap_err().contains("not supported"));
        // A uint64 above i64::MAX is refused.
        let big = npy("<u8", false, "(1,)", &u64::MAX.to_le_bytes());
        assert!(read(&big).is_err());
    }

    #[test]
    fn sizes_are_checked_before_allocating() {
        // A v2 header that claims 4 GiB.
        let mut b = b"\x93NUMPY\x02\x00\xff\xff\xff\xff".to_vec();
        b.extend(b"{}");
        assert!(read(&b).unwrap_err().contains("declares"));
        let big = npy("<i8", false, "(1000000000000, 1000000000000)", &[0; 16]);
        assert!(read(&big).is_err());
        let wrap = npy("<i8", false, "(4294967296, 4294967296, 4)", &[0; 16]);
        assert!(read(&wrap).is_err());
        assert!(read(&npy("<i8", false, "(-1,)", &[])).is_err());
        let deep = npy("<i8", false, &"(".repeat(500), &[]);
        assert!(read(&deep).is_err());
    }
}
