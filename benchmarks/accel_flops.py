"""FLOPs of a jax program, counted from its jaxpr, and the chip's bf16 peak to hold them against.

XLA's cost_analysis() counts a loop body once whatever its trip count and gives fused library
calls (cuDNN attention) no FLOPs, so the sampler's 25 UNet calls inside `lax.fori_loop` would be
counted as one. The jaxpr keeps the loop as a `scan` of known length: walking it, every matrix
product and convolution is counted (2 FLOPs per multiply-add) and multiplied by the trip counts
around it. Elementwise work (norms, activations, softmax) is left out: a few percent at SD's size.
"""
from __future__ import annotations

import math

# Dense bf16 peak (no sparsity) by the device_kind jax reports, in FLOP/s, from the vendors'
# data sheets. The first name contained in device_kind wins: "H100 PCIe" before "H100".
BF16_PEAK = (
    ("H100 PCIe", 756e12), ("H100", 989.4e12), ("H200", 989.4e12), ("H800", 989.4e12),
    ("GH200", 989.4e12), ("B200", 2250e12), ("A100", 312e12), ("L4", 121e12), ("A10", 125e12),
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5", 197e12), ("TPU v4", 275e12),
)


def bf16_peak(device_kind: str) -> dict | None:
  for name, peak in BF16_PEAK:
    if name.lower() in device_kind.lower():
      return {"flop_per_s": peak, "source": f"data-sheet dense bf16 peak for {name!r} "
              f"(device_kind {device_kind!r})"}
  return None


def _size(shape) -> int:
  return int(math.prod(shape))


def _eqn_flops(eqn) -> float:
  name = eqn.primitive.name
  if name == "dot_general":
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return 2.0 * _size(eqn.outvars[0].aval.shape) * _size([lhs[d] for d in lhs_contract])
  if name == "conv_general_dilated":
    rhs = eqn.invars[1].aval.shape
    out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
    return 2.0 * _size(eqn.outvars[0].aval.shape) * _size(rhs) / out_features
  if "dot_product_attention" in name and len(eqn.invars) >= 2:
    # A fused attention call (q, k, v as [B, T, N, H]): QK^T and PV, 2 FLOPs per multiply-add.
    q, k = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    if len(q) == 4 and len(k) == 4:
      return 4.0 * q[0] * q[2] * q[1] * k[1] * q[3]
  return 0.0


def _sub_jaxprs(value):
  """The jaxprs an equation's parameter holds (by shape, not by class: the classes moved
  between jax releases)."""
  if hasattr(value, "eqns"):                                  # a Jaxpr
    yield value
  elif hasattr(getattr(value, "jaxpr", None), "eqns"):        # a ClosedJaxpr
    yield value.jaxpr
  elif isinstance(value, (tuple, list)):
    for v in value:
      yield from _sub_jaxprs(v)


def jaxpr_flops(jaxpr) -> float:
  """Matrix-product and convolution FLOPs of `jaxpr` (a Jaxpr or ClosedJaxpr), loops multiplied out;
  `cond` counts its costliest branch; a `while` of unknown trip count counts its body once."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  total = 0.0
  for eqn in jaxpr.eqns:
    inner = [jaxpr_flops(j) for k, v in eqn.params.items() if k != "branches"
             for j in _sub_jaxprs(v)]
    if eqn.primitive.name == "cond":
      total += max((jaxpr_flops(b) for b in _sub_jaxprs(eqn.params["branches"])), default=0.0)
    elif inner:
      total += sum(inner) * (eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1)
    else:
      total += _eqn_flops(eqn)
  return total


def count_flops(fn, *args) -> dict:
  """{"jaxpr": loop-aware count, "xla_lowered": XLA's count before compilation} for fn(*args)."""
  return {"jaxpr": program_flops(fn, *args), "xla_lowered": xla_lowered_flops(fn, *args)}


def program_flops(fn, *args) -> float:
  """The loop-aware count of fn(*args)'s matrix products and convolutions (traced, not run)."""
  import jax
  return jaxpr_flops(jax.make_jaxpr(fn)(*args))


def xla_lowered_flops(fn, *args) -> float | None:
  """XLA's own count before compilation: a loop body once, fused library calls as nothing; None
  where this jax has no Lowered.cost_analysis. A cross-check of the jaxpr count's loop-free parts."""
  import jax
  try:
    cost = jax.jit(fn).lower(*args).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None
  except Exception:  # noqa: BLE001  (an optional cross-check; the jaxpr count stands alone)
    return None


def matmul_peak(dtype_name: str = "bfloat16", size: int = 8192, repeats: int = 5) -> dict:
  """Best FLOP/s of one large jitted matrix product on the default device: what the chip gives."""
  import time

  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.dtype(dtype_name))
  f = jax.jit(lambda x, y: x @ y)
  jax.block_until_ready(f(a, a))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(f(a, a))
    best = min(best, time.perf_counter() - start)
  return {"size": size, "dtype": dtype_name, "flop_per_s": 2.0 * size ** 3 / best}
