//! Sample values as both exposition formats write them.

/// Appends `v` as Prometheus's parsers read it: `NaN`, `+Inf`, `-Inf`, or the shortest decimal
/// that round-trips (`1.0`, `0.005`, `1e16`).
pub fn write_float(v: f64, out: &mut Vec<u8>) {
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(v).as_bytes());
    } else if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v > 0.0 {
        out.extend_from_slice(b"+Inf");
    } else {
        out.extend_from_slice(b"-Inf");
    }
}

/// `v` formatted by [`write_float`], as a string.
pub fn format_float(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_float(v, &mut out);
    String::from_utf8(out).expect("float formatting is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    }

    proptest::proptest! {
        #[test]
        fn round_trips(v in proptest::num::f64::ANY) {
            let s = format_float(v);
            let back: f64 = match s.as_str() { "+Inf" => f64::INFINITY, "-Inf" => f64::NEG_INFINITY, s => s.parse().unwrap() };
            proptest::prop_assert!(back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()));
        }
    }
}
