"""GPU benchmark (run on a GPU machine; not yet run — see docs/gpu-validation.md).

For each synthetic table, in one run: embgeom's whole `analyze --backend cuda` and its all-pairs
phase; the bare cuBLAS SGEMMs of the same upper-triangle tiles through torch (the floor); a torch
blockwise baseline as a user would write it (matmul + topk + histogram + row sums over the full
V x V); and the time just to read the table from HDF5. Prints a markdown table of times and ratios.

usage: python3 bench/gpu/gpu_allpairs.py [--sizes 50257x768,256000x2304] [--build build-cuda]
Needs torch with CUDA and h5py (both in the device image). Exact float32 only (TF32 off) until
embgeom's --precision modes exist.
"""
import argparse
import os
import subprocess
import tempfile
import time

import h5py
import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="50257x768,256000x2304,1000000x1024")
p.add_argument("--build", default="build-cuda")
p.add_argument("--topk", type=int, default=10)
p.add_argument("--tile", type=int, default=8192)
a = p.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")
embgeom = os.path.join(a.build, "embgeom")


def sync_time(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def triangle_gemms(x, tile):
    """The floor: the SGEMMs of every tile pair I <= J, nothing else."""
    V = x.shape[0]
    buf = torch.empty((tile, tile), device=dev, dtype=torch.float32)
    for i0 in range(0, V, tile):
        xi = x[i0:i0 + tile]
        for j0 in range(i0, V, tile):
            xj = x[j0:j0 + tile]
            torch.mm(xi, xj.T, out=buf[: xi.shape[0], : xj.shape[0]])


def torch_baseline(x, k, tile):
    """What a user writes: every row block against the whole table, top-k, histogram, row sums."""
    V = x.shape[0]
    hist = torch.zeros(2000, device=dev, dtype=torch.float64)
    row_sum = torch.empty(V, device=dev, dtype=torch.float64)
    idx = torch.empty((V, k), device=dev, dtype=torch.int64)
    for i0 in range(0, V, tile):
        s = x[i0:i0 + tile] @ x.T
        n = s.shape[0]
        r = torch.arange(n, device=dev)
        row_sum[i0:i0 + n] = s.sum(1, dtype=torch.float64) - 1.0
        hist += torch.histc(s, bins=2000, min=-1, max=1).double()
        s[r, r + i0] = -float("inf")
        idx[i0:i0 + n] = torch.topk(s, k, dim=1).indices
    return idx, hist, row_sum


print(f"# embgeom GPU benchmark — {torch.cuda.get_device_name()}, torch {torch.__version__}")
with tempfile.TemporaryDirectory() as tmp:
    for size in a.sizes.split(","):
        V, d = map(int, size.split("x"))
        path = os.path.join(tmp, f"t{V}x{d}.h5")
        subprocess.run([embgeom, "synth", "--rows", str(V), "--dim", str(d), "--output", path], check=True,
                       stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            host = f["embeddings"][...]
        read_s = time.perf_counter() - t0
        out = os.path.join(tmp, "out.h5")
        t0 = time.perf_counter()
        subprocess.run([embgeom, "analyze", "--input", path, "--dataset", "/embeddings", "--output", out,
                        "--backend", "cuda", "--topk", str(a.topk)], check=True, stdout=subprocess.DEVNULL)
        whole_s = time.perf_counter() - t0
        with h5py.File(out, "r") as f:
            pairs_s = float(f.attrs["seconds_all_pairs"])
        x = torch.from_numpy(host).to(dev)
        x = x / x.norm(dim=1, keepdim=True)
        triangle_gemms(x, a.tile)  # warm-up
        floor_s = sync_time(lambda: triangle_gemms(x, a.tile))
        torch_s = sync_time(lambda: torch_baseline(x, a.topk, min(a.tile, 4096)))
        flop = float(V) * V * d
        print(f"\n## {V}×{d} float32\n")
        print("| what | seconds | ratio |")
        print("|---|---|---|")
        print(f"| read the HDF5 file (h5py) | {read_s:.2f} | 1.00 |")
        print(f"| embgeom analyze, whole job | {whole_s:.2f} | {whole_s / read_s:.2f} × read |")
        print(f"| embgeom all-pairs phase | {pairs_s:.3f} | {pairs_s / floor_s:.2f} × GEMM floor |")
        print(f"| bare SGEMMs of the triangle (floor, {flop / floor_s / 1e12:.1f} TFLOP/s) | {floor_s:.3f} | 1.00 |")
        print(f"| torch blockwise baseline | {torch_s:.3f} | {torch_s / pairs_s:.2f} × embgeom all-pairs |")
        del x
        torch.cuda.empty_cache()
