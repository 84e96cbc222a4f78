"""Checks scripts/safetensors-to-h5 on checkpoints written here byte by byte (the safetensors
format: 8-byte header size, JSON header, raw little-endian tensors), then embgeom on its output.

usage: check_safetensors_import.py EMBGEOM_BINARY CONVERTER WORK_DIR SEED
Exits non-zero with a message on the first mismatch.
"""
import json
import os
import stat
import struct
import subprocess
import sys

import h5py
import numpy as np

embgeom, converter, work, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(seed)


def fail(msg):
    print(f"MISMATCH (seed {seed}):", msg)
    sys.exit(1)


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, array) in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    head = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def convert(*args):
    return subprocess.run([sys.executable, converter, *args], capture_output=True, text=True)


def stored_bits(path, dataset="embeddings"):
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        bits = np.empty(ds.shape, dtype=f"<u{ds.id.get_type().get_size()}")
        ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, bits, mtype=ds.id.get_type())
        return bits


def bf16_bits(shape):
    # Random float32 values cut to their top half, plus the values a model holds at the edges.
    bits = (rng.standard_normal(shape).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    bits.flat[:4] = [0x0000, 0x8000, 0x0001, 0x7F7F]  # +0, -0, the smallest subnormal, the max
    return bits


def check_failure(args, code, *parts):
    r = convert(*args)
    if r.returncode != code:
        fail(f"{args}: exit {r.returncode}, expected {code}: {r.stderr}")
    if r.stderr.count("\n") != 1 or not r.stderr.startswith("safetensors-to-h5: error: "):
        fail(f"{args}: not one error line: {r.stderr!r}")
    for part in parts:
        if part not in r.stderr:
            fail(f"{args}: '{part}' not in {r.stderr!r}")


# 1. A bfloat16 model (Llama's names) with a BPE tokenizer that names fewer tokens than rows.
V, d = int(rng.integers(300, 1200)), int(rng.integers(1, 70))
named = V - int(rng.integers(1, 20))
model = os.path.join(work, "llama")
os.makedirs(model)
table = bf16_bits((V, d))
write_safetensors(os.path.join(model, "model.safetensors"), {
    "model.embed_tokens.weight": ("BF16", table),
    "model.norm.weight": ("BF16", bf16_bits((d,))),
    "lm_head.weight": ("BF16", bf16_bits((V, d))),
})
vocab = {f"tok{i}": i for i in range(named - 1)}
with open(os.path.join(model, "tokenizer.json"), "w") as f:
    json.dump({"model": {"type": "BPE", "vocab": vocab},
               "added_tokens": [{"id": named - 1, "content": "<|end_of_text|>"}]}, f)
out = os.path.join(work, "llama.h5")
r = convert(model, "-o", out)
if r.returncode != 0:
    fail(f"bf16 model: exit {r.returncode}: {r.stderr}")
if not np.array_equal(stored_bits(out), table):
    fail("bf16 table: stored bits differ from the checkpoint's")
with h5py.File(out, "r") as f:
    names = f["vocab"].asstr()[...].tolist()
    if f["embeddings"].attrs["source_tensor"] != "model.embed_tokens.weight":
        fail(f"source_tensor {f['embeddings'].attrs['source_tensor']}")
want = [f"tok{i}" for i in range(named - 1)] + ["<|end_of_text|>"] + \
       [f"<unnamed {i}>" for i in range(named, V)]
if names != want:
    fail(f"vocab: {names[-3:]} vs {want[-3:]}")
inspect = subprocess.run([embgeom, "inspect", out], capture_output=True, text=True)
if "bfloat16" not in inspect.stdout:
    fail(f"embgeom inspect does not see bfloat16: {inspect.stdout}")
geo = os.path.join(work, "llama-geometry.h5")
r = subprocess.run([embgeom, "analyze", "-i", out, "-d", "/embeddings", "--vocab", "/vocab",
                    "-o", geo, "--backend", "cpu", "--topk", "3"], capture_output=True, text=True)
if r.returncode != 0:
    fail(f"embgeom analyze of the converted table: {r.stderr}")
with h5py.File(geo, "r") as g:
    widened = (table.astype("<u4") << 16).view("<f4").astype(np.float64)
    norms = np.sqrt((widened ** 2).sum(axis=1))
    if not np.allclose(g["norms"][...], norms, rtol=1e-5, atol=1e-30):
        fail("embgeom's norms of the converted table differ from the checkpoint's")

# 2. float16, float32 and float64 tables keep their type; --tensor names one of several.
for dtype, numpy_type in (("F16", "<f2"), ("F32", "<f4"), ("F64", "<f8")):
    rows, cols = int(rng.integers(2, 300)), int(rng.integers(1, 40))
    values = rng.standard_normal((rows, cols)).astype(numpy_type)
    path = os.path.join(work, f"{dtype}.safetensors")
    write_safetensors(path, {"a.embed.weight": (dtype, values),
                             "b.embed.weight": (dtype, values[::-1].copy())})
    check_failure([path, "-o", os.path.join(work, "x.h5")], 2, path, "several",
                  "a.embed.weight", "b.embed.weight", "--tensor")
    out = os.path.join(work, f"{dtype}.h5")
    r = convert(path, "-o", out, "--tensor", "b.embed.weight")
    if r.returncode != 0:
        fail(f"{dtype}: exit {r.returncode}: {r.stderr}")
    with h5py.File(out, "r") as f:
        got = f["embeddings"][...]
        if got.dtype != np.dtype(numpy_type) or not np.array_equal(got, values[::-1]):
            fail(f"{dtype}: stored {got.dtype}, values equal: {np.array_equal(got, values[::-1])}")
        if "vocab" in f:
            fail(f"{dtype}: a /vocab without a tokenizer")

# 3. A sharded checkpoint (GPT-NeoX names) through its index, a Unigram tokenizer named on the
# command line.
shards = os.path.join(work, "sharded")
os.makedirs(shards)
V, d = int(rng.integers(50, 400)), int(rng.integers(2, 30))
table = bf16_bits((V, d))
write_safetensors(os.path.join(shards, "model-00001-of-00002.safetensors"),
                  {"gpt_neox.layers.0.attention.dense.weight": ("BF16", bf16_bits((d, d)))})
write_safetensors(os.path.join(shards, "model-00002-of-00002.safetensors"),
                  {"gpt_neox.embed_in.weight": ("BF16", table),
                   "embed_out.weight": ("BF16", bf16_bits((V, d)))})
with open(os.path.join(shards, "model.safetensors.index.json"), "w") as f:
    json.dump({"weight_map": {"gpt_neox.layers.0.attention.dense.weight":
                              "model-00001-of-00002.safetensors",
                              "gpt_neox.embed_in.weight": "model-00002-of-00002.safetensors",
                              "embed_out.weight": "model-00002-of-00002.safetensors"}}, f)
unigram = os.path.join(work, "unigram.json")
with open(unigram, "w") as f:
    json.dump({"model": {"type": "Unigram", "vocab": [[f"▁w{i}", -float(i)] for i in range(V)]}},
              f)
out = os.path.join(work, "sharded.h5")
r = convert(os.path.join(shards, "model.safetensors.index.json"), "-o", out,
            "--tokenizer", unigram)
if r.returncode != 0:
    fail(f"sharded: exit {r.returncode}: {r.stderr}")
if not np.array_equal(stored_bits(out), table):
    fail("sharded: stored bits differ")
with h5py.File(out, "r") as f:
    if f["vocab"].asstr()[...].tolist() != [f"▁w{i}" for i in range(V)]:
        fail("sharded: Unigram vocabulary")

# A symbolic link at the output is followed: the file it names becomes the table, the link stays.
os.makedirs(os.path.join(work, "elsewhere"), exist_ok=True)
named = os.path.join(work, "elsewhere", "table.h5")
with open(named, "w") as f:
    f.write("an earlier table")
link = os.path.join(work, "table-link.h5")
os.symlink(named, link)
r = convert(os.path.join(work, "llama", "model.safetensors"), "-o", link)
if r.returncode != 0:
    fail(f"conversion onto a link: {r.stderr}")
if not os.path.islink(link) or sorted(os.listdir(os.path.join(work, "elsewhere"))) != ["table.h5"]:
    fail("the output link was not followed or left files beside its target")
with h5py.File(named, "r") as f:
    if f["embeddings"].ndim != 2:
        fail("the linked output does not hold the table")
os.unlink(link)

# 4. Bad input: one line naming the file or tensor, the documented exit code, no file left.
before = sorted(os.listdir(work))
target = os.path.join(work, "never.h5")
path = os.path.join(work, "llama", "model.safetensors")
check_failure([path, "-o", target, "--tensor", "model.embed.weight"], 2, path,
              "no tensor 'model.embed.weight'")
check_failure([path, "-o", target, "--tensor", "model.norm.weight"], 2, "model.norm.weight",
              "not a [tokens, dims] table")
truncated = os.path.join(work, "truncated.safetensors")
with open(path, "rb") as f:
    whole = f.read()
with open(truncated, "wb") as f:
    f.write(whole[: len(whole) - 7])
check_failure([truncated, "-o", target], 3, truncated, "truncated")
garbage = os.path.join(work, "garbage.safetensors")
with open(garbage, "wb") as f:
    f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
check_failure([garbage, "-o", target], 3, garbage, "not JSON")
ints = os.path.join(work, "ints.safetensors")
write_safetensors(ints, {"wte.weight": ("I32", np.zeros((4, 3), np.int32))})
check_failure([ints, "-o", target], 3, ints, "I32")
check_failure([path, "-o", os.path.join(work, "no-such-folder", "t.h5")], 4, "no-such-folder")
pipe = os.path.join(work, "pipe")
os.mkfifo(pipe)
check_failure([path, "-o", pipe], 4, pipe, "not a regular file")
if not stat.S_ISFIFO(os.lstat(pipe).st_mode):
    fail("the pipe at the output path was replaced")
if sorted(os.listdir(work)) != sorted(before + ["truncated.safetensors", "garbage.safetensors",
                                                "ints.safetensors", "pipe"]):
    fail(f"a failed conversion left files: {sorted(set(os.listdir(work)) - set(before))}")
print("ok")
