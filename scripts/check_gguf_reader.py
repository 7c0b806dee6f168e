#!/usr/bin/env python3
"""Compares our GGUF reader's view of a file with the reference reader in the `gguf` package.

Runs `make_test_model dump MODEL` (our reader) and gguf.GGUFReader on the same file, then checks
that the version, every metadata key (order, type, element type and value) and every tensor (name,
ggml type, shape, offset in the data section, byte size) agree.

usage: check_gguf_reader.py MAKE_TEST_MODEL MODEL.gguf [--write-generated]
  --write-generated  first write a generated test model to MODEL.gguf (make_test_model write)
Exit status: 0 match, 1 mismatch, 77 skipped (model file or the gguf package missing).
"""
import json
import os
import struct
import subprocess
import sys

SKIP = 77


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__)
        return 2
    tool, model = args
    if "--write-generated" in sys.argv:
        subprocess.run([tool, "write", model, "--layers", "3", "--weight-type", "Q4_0"], check=True)
    if not os.path.exists(model):
        print(f"SKIP: {model} is absent (scripts/fetch-model.sh downloads it)")
        return SKIP
    try:
        import gguf  # noqa: PLC0415
    except ImportError:
        print("SKIP: the Python package `gguf` is not installed (pip install gguf)")
        return SKIP

    ours = json.loads(subprocess.run([tool, "dump", model], check=True, capture_output=True).stdout)
    ref = gguf.GGUFReader(model)
    errors = []

    def expect(what, got, want):
        if got != want:
            errors.append(f"{what}: ours {got!r}, gguf {want!r}")

    type_names = {
        gguf.GGUFValueType.UINT8: "uint8", gguf.GGUFValueType.INT8: "int8",
        gguf.GGUFValueType.UINT16: "uint16", gguf.GGUFValueType.INT16: "int16",
        gguf.GGUFValueType.UINT32: "uint32", gguf.GGUFValueType.INT32: "int32",
        gguf.GGUFValueType.FLOAT32: "float32", gguf.GGUFValueType.BOOL: "bool",
        gguf.GGUFValueType.STRING: "string", gguf.GGUFValueType.ARRAY: "array",
        gguf.GGUFValueType.UINT64: "uint64", gguf.GGUFValueType.INT64: "int64",
        gguf.GGUFValueType.FLOAT64: "float64",
    }

    def normalize(value, type_name):
        # float32 values travel through JSON as doubles: compare them as float32.
        if type_name == "float32":
            return struct.unpack("<f", struct.pack("<f", float(value)))[0]
        if type_name == "float64":
            return float(value)
        if type_name == "bool":
            return bool(value)
        if type_name == "string":
            return value if isinstance(value, str) else bytes(value).decode("utf-8")
        return int(value)

    header = {f.name: f for f in ref.fields.values() if f.name.startswith("GGUF.")}
    expect("version", ours["version"], int(header["GGUF.version"].parts[-1][0]))
    expect("tensor count", len(ours["tensors"]), int(header["GGUF.tensor_count"].parts[-1][0]))
    expect("metadata count", len(ours["metadata"]), int(header["GGUF.kv_count"].parts[-1][0]))

    ref_fields = [f for f in ref.fields.values() if not f.name.startswith("GGUF.")]
    expect("metadata keys (in order)", [m["key"] for m in ours["metadata"]], [f.name for f in ref_fields])
    for mine, field in zip(ours["metadata"], ref_fields):
        key = field.name
        ref_type = type_names[field.types[0]]
        expect(f"{key} type", mine["type"], ref_type)
        if ref_type == "array":
            element = type_names[field.types[1]] if len(field.types) > 1 else None
            if element is not None:
                expect(f"{key} element type", mine["element_type"], element)
            if element == "array":
                continue  # nested arrays: gguf's contents() does not decode them uniformly
            want = [normalize(v, element) for v in field.contents()]
            got = [normalize(v, element) for v in mine["value"]]
            if got != want:
                first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                errors.append(f"{key}: arrays differ (lengths {len(got)}/{len(want)}, first difference at {first})")
        else:
            expect(key, normalize(mine["value"], ref_type), normalize(field.contents(), ref_type))

    data_offset = ours["data_offset"]
    expect("data section offset", data_offset, ref.data_offset)
    for mine, t in zip(ours["tensors"], ref.tensors):
        name = t.name
        expect("tensor name", mine["name"], name)
        expect(f"{name} type", mine["type_id"], int(t.tensor_type))
        expect(f"{name} type name", mine["type"], t.tensor_type.name)
        expect(f"{name} shape", mine["shape"], [int(d) for d in t.shape])
        expect(f"{name} offset", data_offset + mine["offset"], int(t.data_offset))
        expect(f"{name} bytes", mine["bytes"], int(t.n_bytes))

    if errors:
        print(f"MISMATCH: {len(errors)} differences between our reader and gguf {getattr(gguf, '__version__', '')}")
        for e in errors[:50]:
            print("  " + e)
        return 1
    print(f"OK: {len(ours['metadata'])} metadata keys and {len(ours['tensors'])} tensors match the gguf package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
