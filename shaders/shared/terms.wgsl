#import common
// (tp, fp, fn) of one quad, per lane, by formulation. The soft form is computed per
// element as (|p| + |y| − |p − y|)/2, i.e. min(p, y) for p, y ≥ 0, which avoids the
// cancellation of (P + G − D)/2 on the sums (SPEC §3, accuracy hint).
struct Terms {
    tp: vec4<f32>,
    fp: vec4<f32>,
    fn_: vec4<f32>,
}

fn terms(p: vec4<f32>, y: vec4<f32>) -> Terms {
    switch FORMULATION {
        case 0u: {
            let tp = 0.5 * (abs(p) + abs(y) - abs(p - y));
            return Terms(tp, abs(p) - tp, abs(y) - tp);
        }
        case 1u: {
            return Terms(p * y, p * (p - y), y * (y - p));
        }
        default: {
            return Terms(p * y, p * (1.0 - y), y * (1.0 - p));
        }
    }
}

