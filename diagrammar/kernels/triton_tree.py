"""Tree attention as a Triton kernel: the prefix split over the KV length, merged by log-sum-exp.

The contract is :func:`~diagrammar.kernels.reference.tree_attention_reference`'s. Verification
has few queries (the T <= 64 tree nodes) and a long cache, so the work is split along the keys
(as flash-decoding does), not only along heads and queries:

1. ``_tree_attention_partial``, one program per (split, query block, head). Programs
   ``0 .. S-1`` each take a slice of the prefix (every key visible) and run the online softmax
   over it in blocks of ``BLOCK_N`` keys; program ``S`` takes the tree block, where query
   ``i`` loads its ancestor word once and sees key ``j`` iff bit ``j`` is set. Each writes its
   normalised partial output and its log-sum-exp (base 2) in float32.
2. ``_merge_partials``, one program per (query block, head), weights the S + 1 partial
   outputs by ``exp2(lse_s - max lse)`` and writes the result in the input dtype.

A row that sees no key has ``l = 0`` in every split: its log-sum-exp is ``-inf``, its weight 0
and its output zeros (no ``exp(-inf - -inf)`` anywhere: maxima of ``-inf`` are replaced by 0
before they are subtracted).

On a GPU the kernels are compiled; on a CPU they run in Triton's interpreter, which must be
chosen before this module is first imported (``TRITON_INTERPRET=1``: ``triton.jit`` reads it
when it decorates). float32 dot products use IEEE precision (no TF32), so the float32 kernel
matches the reference to about 1e-6 in the interpreter (not yet measured on a GPU); float16
and bfloat16 accumulate in float32.

Usage (on a CPU, the interpreter chosen before the first import)::

    os.environ["TRITON_INTERPRET"] = "1"
    from diagrammar.kernels.triton_tree import tree_attention_triton
    out = tree_attention_triton(q, k_prefix, v_prefix, k_tree, v_tree, words)

How a prefix of 100 keys is cut for 4 (query block, head) programs, in slices of 30:

>>> plan_splits(100, 4, 64, torch.device("cpu"), split_size=30)
(4, 30)
>>> plan_splits(0, 4, 64, torch.device("cpu"))
(0, 1)
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from diagrammar.kernels.reference import check_inputs

#: Input dtypes the kernel takes (the interpreter: float32 and float16 only).
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: The largest head size (padded to a power of two) one program holds.
MAX_HEAD_SIZE = 256


@triton.jit
def _accumulate(scores, values, m_i, l_i, acc, INPUT_PRECISION: tl.constexpr):
    """One step of the online softmax: fold a block of base-2 ``scores`` (``-inf`` where
    hidden) and its ``values`` into the running maximum, sum and weighted values."""
    m_new = tl.maximum(m_i, tl.max(scores, axis=1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)   # rows that saw nothing yet
    alpha = tl.math.exp2(m_i - m_safe)
    p = tl.math.exp2(scores - m_safe[:, None])
    l_i = l_i * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + tl.dot(p.to(values.dtype), values,
                                        input_precision=INPUT_PRECISION)
    return m_new, l_i, acc


@triton.jit
def _tree_attention_partial(
        Q, KP, VP, KT, VT, WORDS, O_PART, LSE_PART,
        stride_qh, stride_qt, stride_kph, stride_kpn, stride_vph, stride_vpn,
        stride_kth, stride_ktn, stride_vth, stride_vtn,
        T, P, D, SPLIT_SIZE, NUM_SPLITS, qk_scale,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
        INPUT_PRECISION: tl.constexpr):
    split = tl.program_id(0)
    block = tl.program_id(1)
    head = tl.program_id(2)
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    cols = tl.arange(0, BLOCK_N)
    row_ok = rows < T
    dim_ok = dims < D
    q = tl.load(Q + head * stride_qh + rows[:, None] * stride_qt + dims[None, :],
                mask=row_ok[:, None] & dim_ok[None, :], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    if split < NUM_SPLITS:
        # A slice of the prefix: every key visible to every query.
        lo = split * SPLIT_SIZE
        hi = tl.minimum(lo + SPLIT_SIZE, P)
        for start in range(lo, hi, BLOCK_N):
            keys = start + cols
            key_ok = keys < hi
            tile = key_ok[:, None] & dim_ok[None, :]
            k = tl.load(KP + head * stride_kph + keys[:, None] * stride_kpn + dims[None, :],
                        mask=tile, other=0.0)
            v = tl.load(VP + head * stride_vph + keys[:, None] * stride_vpn + dims[None, :],
                        mask=tile, other=0.0)
            scores = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION) * qk_scale
            scores = tl.where(key_ok[None, :], scores, float("-inf"))
            m_i, l_i, acc = _accumulate(scores, v, m_i, l_i, acc, INPUT_PRECISION)
    else:
        # The tree block: query i sees key j iff bit j of its ancestor word is set.
        word = tl.load(WORDS + rows, mask=row_ok, other=0)
        for start in range(0, T, BLOCK_N):
            keys = start + cols
            key_ok = keys < T
            tile = key_ok[:, None] & dim_ok[None, :]
            k = tl.load(KT + head * stride_kth + keys[:, None] * stride_ktn + dims[None, :],
                        mask=tile, other=0.0)
            v = tl.load(VT + head * stride_vth + keys[:, None] * stride_vtn + dims[None, :],
                        mask=tile, other=0.0)
            shift = tl.where(key_ok, keys, 0).to(tl.int64)   # no shifts by 64 or more
            bits = (word[:, None] >> shift[None, :]) & 1
            visible = (bits != 0) & key_ok[None, :]
            scores = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION) * qk_scale
            scores = tl.where(visible, scores, float("-inf"))
            m_i, l_i, acc = _accumulate(scores, v, m_i, l_i, acc, INPUT_PRECISION)
    seen = l_i > 0.0
    lse = tl.where(seen, m_i + tl.math.log2(tl.where(seen, l_i, 1.0)), float("-inf"))
    out = acc / tl.where(seen, l_i, 1.0)[:, None]
    base = (head * (NUM_SPLITS + 1) + split) * T
    tl.store(O_PART + (base + rows)[:, None] * BLOCK_D + dims[None, :], out,
             mask=row_ok[:, None])
    tl.store(LSE_PART + base + rows, lse, mask=row_ok)


@triton.jit
def _merge_partials(O_PART, LSE_PART, OUT, stride_oh, stride_ot, T, D, SPLITS,
                    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    block = tl.program_id(0)
    head = tl.program_id(1)
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_ok = rows < T
    top = tl.full([BLOCK_M], float("-inf"), tl.float32)
    for split in range(0, SPLITS):
        lse = tl.load(LSE_PART + (head * SPLITS + split) * T + rows, mask=row_ok,
                      other=float("-inf"))
        top = tl.maximum(top, lse)
    top = tl.where(top == float("-inf"), 0.0, top)   # rows that saw nothing anywhere
    total = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for split in range(0, SPLITS):
        base = (head * SPLITS + split) * T
        weight = tl.math.exp2(tl.load(LSE_PART + base + rows, mask=row_ok,
                                      other=float("-inf")) - top)
        part = tl.load(O_PART + (base + rows)[:, None] * BLOCK_D + dims[None, :],
                       mask=row_ok[:, None], other=0.0)
        total += weight
        acc += weight[:, None] * part
    out = acc / tl.where(total > 0.0, total, 1.0)[:, None]
    tl.store(OUT + head * stride_oh + rows[:, None] * stride_ot + dims[None, :],
             out.to(OUT.dtype.element_ty), mask=row_ok[:, None] & (dims < D)[None, :])


def interpreted() -> bool:
    """Whether the kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` was set when
    this module was imported) rather than compiled for a GPU."""
    return isinstance(_tree_attention_partial, InterpretedFunction)


def _rows_last(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with unit stride along its last dimension (a copy only if it lacks one):
    cache buffers sliced along the length keep theirs, so they pass without a copy."""
    return tensor if tensor.stride(-1) == 1 else tensor.contiguous()


def plan_splits(prefix: int, programs: int, block_n: int, device: torch.device,
                split_size: int | None = None) -> tuple[int, int]:
    """``(splits, split_size)`` for a prefix of ``prefix`` keys, ``programs`` being the
    (query block, head) pairs. Given ``split_size``, the prefix is cut into slices of that
    many keys. Otherwise, in the interpreter one slice (fewest programs); on a GPU enough
    slices of whole ``block_n`` blocks for about two programs per multiprocessor."""
    if prefix == 0:
        return 0, max(split_size or 1, 1)
    if split_size is not None:
        if split_size < 1:
            raise ValueError(f"split_size must be positive, got {split_size}")
        return triton.cdiv(prefix, split_size), split_size
    if device.type != "cuda" or interpreted():
        return 1, prefix
    processors = torch.cuda.get_device_properties(device).multi_processor_count
    splits = min(max(triton.cdiv(2 * processors, programs), 1), triton.cdiv(prefix, block_n))
    size = triton.cdiv(triton.cdiv(prefix, splits), block_n) * block_n
    return triton.cdiv(prefix, size), size


def tree_attention_triton(q: torch.Tensor, k_prefix: torch.Tensor, v_prefix: torch.Tensor,
                          k_tree: torch.Tensor, v_tree: torch.Tensor,
                          ancestor_words: torch.Tensor, scale: float | None = None, *,
                          split_size: int | None = None, block_m: int | None = None,
                          block_n: int = 64, num_warps: int = 4) -> torch.Tensor:
    """Tree attention (the reference's contract) with the Triton kernels.

    Args:
        q, k_prefix, v_prefix, k_tree, v_tree: ``(heads, T | P, d)`` float32, float16 or
            bfloat16 tensors on one device (the last dimension contiguous, other strides
            free: slices of a cache buffer pass without copies).
        ancestor_words: int64 ``(T,)``, see :mod:`diagrammar.kernels.ancestor_words`.
        scale: the score scale, ``1 / sqrt(d)`` by default.
        split_size: prefix keys per program (default: see :func:`plan_splits`).
        block_m, block_n: queries and keys per block (powers of two, at least 16; ``block_m``
            defaults to T rounded up, between 16 and 64, so one block holds the whole tree).
    """
    check_inputs(q, k_prefix, v_prefix, k_tree, v_tree, ancestor_words)
    if q.dtype not in DTYPES:
        raise ValueError(f"the Triton tree attention takes {', '.join(map(str, DTYPES))}; "
                         f"got {q.dtype} (float64: use the reference)")
    if q.dtype == torch.bfloat16 and interpreted():
        raise ValueError("Triton's interpreter computes bfloat16 wrongly (it has no NumPy "
                         "type): use float32 or float16 there, bfloat16 on a GPU")
    if q.device.type != "cuda" and not interpreted():
        raise RuntimeError(f"tensors on {q.device} need Triton's interpreter: set "
                           "TRITON_INTERPRET=1 before diagrammar.kernels.triton_tree (or "
                           "triton.jit code) is first imported, or use the reference")
    heads, nodes, size = q.shape
    prefix = k_prefix.shape[1]
    block_d = max(16, triton.next_power_of_2(size))
    if block_d > MAX_HEAD_SIZE:
        raise ValueError(f"head size {size} exceeds {MAX_HEAD_SIZE}")
    block_m = block_m or min(64, max(16, triton.next_power_of_2(nodes)))
    for name, value in (("block_m", block_m), ("block_n", block_n)):
        if value < 16 or value & (value - 1):
            raise ValueError(f"{name} must be a power of two of at least 16, got {value}")
    scale = 1.0 / math.sqrt(size) if scale is None else float(scale)
    q, k_prefix, v_prefix, k_tree, v_tree = map(_rows_last, (q, k_prefix, v_prefix, k_tree,
                                                              v_tree))
    words = ancestor_words.contiguous()
    blocks = triton.cdiv(nodes, block_m)
    splits, split_size = plan_splits(prefix, blocks * heads, block_n, q.device, split_size)
    partial_out = torch.empty((heads, splits + 1, nodes, block_d), dtype=torch.float32,
                              device=q.device)
    partial_lse = torch.empty((heads, splits + 1, nodes), dtype=torch.float32, device=q.device)
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    _tree_attention_partial[(splits + 1, blocks, heads)](
        q, k_prefix, v_prefix, k_tree, v_tree, words, partial_out, partial_lse,
        q.stride(0), q.stride(1), k_prefix.stride(0), k_prefix.stride(1),
        v_prefix.stride(0), v_prefix.stride(1), k_tree.stride(0), k_tree.stride(1),
        v_tree.stride(0), v_tree.stride(1),
        nodes, prefix, size, split_size, splits, scale * math.log2(math.e),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, INPUT_PRECISION="ieee",
        num_warps=num_warps)
    _merge_partials[(blocks, heads)](
        partial_out, partial_lse, out, out.stride(0), out.stride(1), nodes, size, splits + 1,
        BLOCK_M=block_m, BLOCK_D=block_d, num_warps=num_warps)
    return out


__all__ = ["DTYPES", "MAX_HEAD_SIZE", "interpreted", "plan_splits", "tree_attention_triton"]
