//! A deep-supervision call's checks (heads, target, mask, weights), and its CPU-context
//! path: each coarse head's target pooled on the host, every head through the host API.

use super::{in_head, pool, pool_host, DeepSupervision, DeepTarget, Head};
use crate::error::{Error, Result};
use crate::shape::{check_len, Batch, Shape, Target};

impl DeepSupervision {
    /// Checks the heads, the target and the mask; the weights.
    pub(super) fn check(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
    ) -> Result<Vec<f32>> {
        if heads.is_empty() {
            return Err(Error::option("heads", "no head: give at least one"));
        }
        let weights = self.weights.of(heads.len())?;
        self.full.check_shape(target_shape)?;
        let (b, c) = (target_shape.batch(), target_shape.classes());
        match target {
            DeepTarget::Index(t) => {
                check_len("target", t.len(), target_shape.map_len())?;
                let ignore = self.options().ignore_index;
                if let Some((j, &y)) = t
                    .iter()
                    .enumerate()
                    .find(|(_, &y)| y as usize >= c && ignore != Some(i64::from(y)))
                {
                    return Err(Error::ClassIndexOutOfRange {
                        value: Some(i64::from(y)),
                        classes: c,
                        position: Some(j),
                    });
                }
            }
            DeepTarget::Soft(t) => {
                check_len("target", t.len(), target_shape.len())?;
                if self.options().ignore_index.is_some() {
                    return Err(Error::option(
                        "ignore_index",
                        "deep supervision with soft targets: pass a keep-mask instead",
                    ));
                }
                if let Some(j) = t.iter().position(|v| !(*v >= 0.0 && *v <= 1.0)) {
                    return Err(Error::SoftTargetOutOfRange { position: Some(j) });
                }
            }
        }
        if let Some(m) = mask {
            check_len("mask", m.len(), target_shape.map_len())?;
        }
        let spatial = &target_shape.dims()[2..];
        for (k, h) in heads.iter().enumerate() {
            let named = in_head(k);
            let dims = h.shape.dims();
            if dims[0] != b || dims[1] != c {
                return Err(named(Error::InvalidShape {
                    shape: dims.to_vec(),
                    reason: format!(
                        "B = {}, C = {}: the target's are {b} and {c}",
                        dims[0], dims[1]
                    ),
                }));
            }
            pool::check_sizes(self.pooling, spatial, &dims[2..]).map_err(&named)?;
            check_len("input", h.input.len(), h.shape.len()).map_err(&named)?;
        }
        Ok(weights)
    }

    /// The CPU context: pooled on the host, each head through the host API.
    pub(super) fn on_host(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
        with_grad: bool,
    ) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        let spatial = &target_shape.dims()[2..];
        let (b, c) = (target_shape.batch(), target_shape.classes());
        let mut losses = Vec::new();
        let mut grads = Vec::new();
        for (k, h) in heads.iter().enumerate() {
            let dst = &h.shape.dims()[2..];
            let pooled;
            let (loss, batch) = if dst == spatial {
                let t = match target {
                    DeepTarget::Index(t) => Target::Index(t),
                    DeepTarget::Soft(t) => Target::Soft(t),
                };
                let batch = Batch {
                    shape: h.shape,
                    input: h.input,
                    target: t,
                    mask,
                };
                (&self.full, batch)
            } else {
                let ignore = self.options().ignore_index;
                pooled = pool_host((b, c, spatial), target, mask, ignore, dst, self.pooling);
                let batch = Batch {
                    shape: h.shape,
                    input: h.input,
                    target: Target::Soft(&pooled.0),
                    mask: Some(&pooled.1),
                };
                (&self.coarse, batch)
            };
            let out = if with_grad {
                loss.forward_backward(&batch)
            } else {
                loss.forward(&batch)
            }
            .map_err(in_head(k))?;
            losses.push(out.loss);
            grads.extend(out.grad);
        }
        Ok((losses, grads))
    }
}
