#!/usr/bin/env python3
"""Checks our ggml block layouts against the ecosystem's definition, the `gguf` package's quants.

For every type we read: random blocks (random bytes, with the f16 scale fields set to finite
values) and blocks our quantizer made from random floats are dequantized by `make_test_model
dequantize` (our CPU code) and by gguf.quants.dequantize; the f32 results must be equal bit for bit.
For the types gguf-py also quantizes (Q4_0, Q4_1, Q5_0, Q8_0, BF16), our quantized bytes must equal
its bytes too.

usage: check_quants.py MAKE_TEST_MODEL
Exit status: 0 match, 1 mismatch, 77 skipped (the gguf package missing).
"""
import os
import subprocess
import sys
import tempfile

SKIP = 77

# name -> byte offsets of the f16 scale fields inside one block
SCALE_FIELDS = {
    "F32": [], "F16": [], "BF16": [],
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q8_0": [0],
    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}
GGUF_QUANTIZES = ["Q4_0", "Q4_1", "Q5_0", "Q8_0", "BF16"]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    tool = sys.argv[1]
    try:
        import numpy as np  # noqa: PLC0415
        from gguf import GGMLQuantizationType, quants  # noqa: PLC0415
        from gguf.constants import GGML_QUANT_SIZES  # noqa: PLC0415
    except ImportError:
        print("SKIP: the Python package `gguf` is not installed (pip install gguf)")
        return SKIP

    rng = np.random.default_rng(13)
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        def ours(mode, name, data):
            src, dst = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
            data.tofile(src)
            subprocess.run([tool, mode, name, src, dst], check=True)
            return np.fromfile(dst, dtype=np.float32 if mode == "dequantize" else np.uint8)

        def compare(what, got, want):
            got_bits = got.view(np.uint32)
            want_bits = np.ascontiguousarray(want, dtype=np.float32).reshape(-1).view(np.uint32)
            if got_bits.shape != want_bits.shape:
                errors.append(f"{what}: {got_bits.size} values, gguf {want_bits.size}")
                return
            bad = np.nonzero(got_bits != want_bits)[0]
            if bad.size:
                i = bad[0]
                errors.append(f"{what}: {bad.size} of {got.size} values differ; first at {i}: "
                              f"ours {got[i]!r}, gguf {want.reshape(-1)[i]!r}")
            else:
                print(f"ok  {what}: {got.size} values equal bit for bit")

        for name, fields in SCALE_FIELDS.items():
            qtype = GGMLQuantizationType[name]
            block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
            n_blocks = 512
            if name in ("F32", "F16", "BF16"):
                values = (rng.standard_normal(n_blocks * 32) * 3).astype(np.float32)
                raw = {"F32": values, "F16": values.astype(np.float16),
                       "BF16": (values.view(np.uint32) >> 16).astype(np.uint16)}[name]
                raw = raw.view(np.uint8).reshape(-1, block_bytes)
            else:
                raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
                for off in fields:
                    scale = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
                    raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
            compare(f"{name} random blocks", ours("dequantize", name, raw),
                    quants.dequantize(raw, qtype))

            floats = (rng.standard_normal(n_blocks * block_elems) *
                      rng.uniform(0.01, 2.0, size=n_blocks * block_elems)).astype(np.float32)
            made = ours("quantize", name, floats)
            compare(f"{name} quantized blocks", ours("dequantize", name, made),
                    quants.dequantize(made.reshape(-1, block_bytes), qtype))
            if name in GGUF_QUANTIZES:
                ref = quants.quantize(floats.reshape(-1, block_elems), qtype).reshape(-1)
                diff = np.nonzero(made != ref)[0]
                if diff.size:
                    errors.append(f"{name} quantize: {diff.size} of {made.size} bytes differ from gguf's")
                else:
                    print(f"ok  {name} quantize: {made.size} bytes equal gguf's")

    for e in errors:
        print("MISMATCH", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
