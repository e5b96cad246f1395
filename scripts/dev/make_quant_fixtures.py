#!/usr/bin/python3
"""Dev-only: regenerate the golden dequantization fixtures in tests/fixtures/quant/.

For each block format: random block bytes (every code bit random; fp16 scales random but forced finite) plus a
few hand-picked edge blocks, dequantized with llama.cpp's numpy reference (gguf-py/gguf/quants.py). Where
llama.cpp's C library is built, the script also checks that ggml's own C dequantizer gives the very same bits.

Never run by the build or CI. Needs numpy and a llama.cpp checkout:
    PYTHONPATH=/tmp/llama.cpp/gguf-py /usr/bin/python3 scripts/dev/make_quant_fixtures.py \
        [--ggml-lib /tmp/llama.cpp/build/bin/libggml-base.so]

File format (little-endian): b"KQFX", u32 version (1), u32 ggml type id, u32 block_elems, u32 block_bytes,
u32 n_blocks, then n_blocks * block_bytes bytes of blocks, then n_blocks * block_elems float32 (expected).
"""
import argparse
import ctypes
import os
import struct
import sys

import numpy as np
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(REPO, "tests", "fixtures", "quant")

# name (kinfer / ggml spelling), type, number of random blocks, byte offsets of fp16 fields in a block
FORMATS = [
    ("q4_0", T.Q4_0, 160, [0]),
    ("q4_1", T.Q4_1, 160, [0, 2]),
    ("q5_0", T.Q5_0, 160, [0]),
    ("q5_1", T.Q5_1, 160, [0, 2]),
    ("q8_0", T.Q8_0, 160, [0]),
    ("q2_K", T.Q2_K, 40, [80, 82]),
    ("q3_K", T.Q3_K, 40, [108]),
    ("q4_K", T.Q4_K, 40, [0, 2]),
    ("q5_K", T.Q5_K, 40, [0, 2]),
    ("q6_K", T.Q6_K, 40, [208]),
    ("q8_K", T.Q8_K, 40, None),  # float32 scale at offset 0; no numpy dequantizer in gguf-py
]

# fp16 values for the scale fields of the edge blocks
F16_ZERO, F16_NEG_ZERO, F16_ONE, F16_NEG_ONE = 0x0000, 0x8000, 0x3C00, 0xBC00
F16_MAX, F16_NEG_MAX, F16_MIN_SUB, F16_NEG_MIN_SUB = 0x7BFF, 0xFBFF, 0x0001, 0x8001


def finite_f16(rng, n):
    v = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    while True:
        bad = (v & 0x7C00) == 0x7C00
        if not bad.any():
            return v
        v[bad] = rng.integers(0, 1 << 16, size=int(bad.sum()), dtype=np.uint32).astype(np.uint16)


def finite_f32_bits(rng, n):
    v = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    while True:
        bad = (v & 0x7F800000) == 0x7F800000
        if not bad.any():
            return v
        v[bad] = rng.integers(0, 1 << 32, size=int(bad.sum()), dtype=np.uint64).astype(np.uint32)


def set_u16(block, off, value):
    block[off:off + 2] = np.frombuffer(struct.pack("<H", value), dtype=np.uint8)


def edge_blocks(rng, type_size, f16_offsets):
    """Hand-picked blocks: all-zero, max codes with extreme scales, zero / negative / subnormal scales."""
    out = []

    def make(fill, scales):
        b = np.full(type_size, fill, dtype=np.uint8) if isinstance(fill, int) else fill.copy()
        if f16_offsets is None:  # Q8_K: float32 d
            b[0:4] = np.frombuffer(struct.pack("<f", scales[0]), dtype=np.uint8)
        else:
            for k, off in enumerate(f16_offsets):
                set_u16(b, off, scales[k % len(scales)])
        out.append(b)

    rnd = rng.integers(0, 256, size=type_size, dtype=np.uint8)
    if f16_offsets is None:
        make(0, [0.0])
        make(0xFF, [1.0])
        make(0xFF, [-1.0])
        make(rnd, [0.0])
        make(rnd, [-0.0])
        make(rnd, [1e-45])  # smallest subnormal
        make(rnd, [-3.0e38])  # products overflow to -inf/+inf, identically
        make(0x80, [0.5])  # all codes -128
        make(0x7F, [-0.25])  # all codes 127
    else:
        make(0, [F16_ZERO])  # all zero
        make(0xFF, [F16_MAX])  # max codes, max scale (and min)
        make(0xFF, [F16_NEG_MAX])  # max codes, negative scales
        make(0xFF, [F16_MAX, F16_NEG_MAX])  # scale > 0, min < 0 where there is a min
        make(0, [F16_NEG_ONE])  # zero codes, negative scale
        make(rnd, [F16_ZERO])  # d = 0 with random codes
        make(rnd, [F16_NEG_ZERO])
        make(rnd, [F16_MIN_SUB, F16_NEG_MIN_SUB])
        make(rnd, [F16_ONE, F16_NEG_ONE])
        make(0x55, [F16_ONE])
        make(0xAA, [F16_NEG_ONE, F16_ONE])
    return out


def random_blocks(rng, n_blocks, type_size, f16_offsets):
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    if f16_offsets is None:
        d = finite_f32_bits(rng, n_blocks)
        blocks[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
    else:
        for off in f16_offsets:
            d = finite_f16(rng, n_blocks)
            blocks[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def dequantize_q8_k_numpy(blocks):
    d = blocks[:, 0:4].copy().view(np.float32)
    qs = blocks[:, 4:4 + 256].copy().view(np.int8).astype(np.float32)
    return (d * qs).astype(np.float32)


def ggml_c_dequantize(lib, name, blocks, n_elems):
    fn_name = {"f16": "ggml_fp16_to_fp32_row", "bf16": "ggml_bf16_to_fp32_row"}.get(name, "dequantize_row_" + name)
    fn = getattr(lib, fn_name)
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    src = np.ascontiguousarray(blocks)
    out = np.empty(n_elems, dtype=np.float32)
    fn(src.ctypes.data, out.ctypes.data, n_elems)
    return out


def write_fixture(name, type_id, block_elems, block_bytes, blocks, expected):
    n_blocks = blocks.shape[0]
    assert expected.dtype == np.float32 and expected.size == n_blocks * block_elems
    assert not np.isnan(expected).any(), name
    path = os.path.join(OUT_DIR, name + ".bin")
    with open(path, "wb") as f:
        f.write(b"KQFX" + struct.pack("<5I", 1, type_id, block_elems, block_bytes, n_blocks))
        f.write(blocks.tobytes())
        f.write(expected.astype("<f4").tobytes())
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ggml-lib", default="/tmp/llama.cpp/build/bin/libggml-base.so",
                    help="llama.cpp's libggml-base.so for a cross-check of numpy against C (skipped if missing)")
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()

    lib = ctypes.CDLL(args.ggml_lib) if os.path.exists(args.ggml_lib) else None
    if lib is None:
        print(f"note: {args.ggml_lib} not found; not cross-checking against ggml's C dequantizers", file=sys.stderr)
    os.makedirs(OUT_DIR, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    for name, qtype, n_random, f16_offsets in FORMATS:
        block_elems, type_size = GGML_QUANT_SIZES[qtype]
        blocks = np.stack(edge_blocks(rng, type_size, f16_offsets) +
                          list(random_blocks(rng, n_random, type_size, f16_offsets)))
        n_elems = blocks.shape[0] * block_elems
        if qtype == T.Q8_K:
            expected = dequantize_q8_k_numpy(blocks).reshape(-1)
        else:
            expected = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32).reshape(-1)
        if lib is not None:
            c_out = ggml_c_dequantize(lib, name, blocks, n_elems)
            if c_out.tobytes() != expected.tobytes():
                sys.exit(f"{name}: gguf-py and ggml's C dequantizer disagree")
        path = write_fixture(name, int(qtype), block_elems, type_size, blocks, expected)
        print(f"{path}: {blocks.shape[0]} blocks")

    # The plain half formats: random finite bit patterns (incl. subnormals, signed zeros).
    for name, qtype in (("f16", T.F16), ("bf16", T.BF16)):
        if qtype == T.F16:
            bits = finite_f16(rng, 2048)
        else:
            bits = rng.integers(0, 1 << 16, size=2048, dtype=np.uint32).astype(np.uint16)
            bits[(bits & 0x7F80) == 0x7F80] &= 0xFF7F  # clear one exponent bit: finite
        bits[:4] = [0x0000, 0x8000, 0x0001, 0x8001]
        raw = bits.view(np.uint8).reshape(-1, 2)
        expected = quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        if lib is not None and ggml_c_dequantize(lib, name, raw, bits.size).tobytes() != expected.tobytes():
            sys.exit(f"{name}: gguf-py and ggml's C conversion disagree")
        path = write_fixture(name, int(qtype), 1, 2, raw, expected)
        print(f"{path}: {bits.size} values")


if __name__ == "__main__":
    main()
