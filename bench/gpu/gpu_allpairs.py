"""GPU benchmark of embgeom's CUDA backend (run on a GPU machine through scripts/gpu-validate bench;
results are recorded in docs/gpu-validation.md only when seen).

For each synthetic table, in one run and on one GPU: embgeom's whole `analyze --backend cuda` and
its all-pairs phase in each precision asked for; the bare GEMMs of the same upper triangle through
torch in the precision embgeom used (the floor); a torch blockwise baseline as a user would write it
(matmul + topk + histogram + row sums over the full V x V, same precision); the time just to read
the table from HDF5; and top-10 recall of every run against float64 cosines on a row sample.
faiss-gpu is not in the GPU machine's image (and its wheel is too large to carry), so it is absent.

usage: python3 bench/gpu/gpu_allpairs.py --build DIR [--sizes 50257x768,128256x4096:bfloat16]
       [--precisions exact,auto] [--exact-max-gflop 20000]
Each size is VxD[:dtype] (dtype float32, bfloat16 or float16 as stored in the file). Exact float32
runs (and their recall reference) are skipped above --exact-max-gflop of triangle work, where the
float32 cores would take minutes. Needs torch with CUDA and h5py.
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
p.add_argument("--sizes", default="50257x768,128256x4096:bfloat16,256000x2304,1000000x1024")
p.add_argument("--build", default="build-cuda")
p.add_argument("--precisions", default="exact,auto")
p.add_argument("--topk", type=int, default=10)
p.add_argument("--tile", type=int, default=8192)
p.add_argument("--exact-max-gflop", type=float, default=20000.0)
a = p.parse_args()
dev = torch.device("cuda")
embgeom = os.path.join(a.build, "embgeom")


def sync_time(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def set_torch_precision(mode):
    """torch's matmul in the precision embgeom ran: tf32 allowed only for tf32."""
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"


def operand(x, mode):
    """x in the product's input type: bf16-raw and fp16-raw (tables exact in 16 bits) multiply
    16-bit words like bf16 and fp16, so their floor and torch peer run in 16 bits too."""
    mode = mode.replace("-raw", "")
    return x.to(torch.bfloat16) if mode == "bf16" else x.half() if mode == "fp16" else x


def triangle_gemms(x, tile, mode):
    """The floor: the GEMMs of every tile pair I <= J, nothing else."""
    V = x.shape[0]
    y = operand(x, mode)
    buf = torch.empty((tile, tile), device=dev, dtype=y.dtype)
    for i0 in range(0, V, tile):
        yi = y[i0:i0 + tile]
        for j0 in range(i0, V, tile):
            yj = y[j0:j0 + tile]
            torch.mm(yi, yj.T, out=buf[: yi.shape[0], : yj.shape[0]])


def torch_baseline(x, k, mode):
    """What a user writes: every row block against the whole table, top-k, histogram, row sums."""
    V = x.shape[0]
    y = operand(x, mode)
    tile = max(256, min(4096, (1 << 30) // V))  # a block of V-wide rows stays under 4 GiB
    hist = torch.zeros(2000, device=dev, dtype=torch.float64)
    row_sum = torch.empty(V, device=dev, dtype=torch.float64)
    idx = torch.empty((V, k), device=dev, dtype=torch.int64)
    for i0 in range(0, V, tile):
        s = (y[i0:i0 + tile] @ y.T).float()
        n = s.shape[0]
        r = torch.arange(n, device=dev)
        row_sum[i0:i0 + n] = s.sum(1, dtype=torch.float64) - 1.0
        hist += torch.histc(s, bins=2000, min=-1, max=1).double()
        s[r, r + i0] = -float("inf")
        idx[i0:i0 + n] = torch.topk(s, k, dim=1).indices
    return idx, hist, row_sum


def read_raw(path):
    """The stored table, read as raw words (h5py knows no bfloat16), and as float32."""
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        ds = f["embeddings"]
        raw = np.empty(ds.shape, dtype=f"u{ds.id.get_type().get_size()}")
        ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=ds.id.get_type())
    seconds = time.perf_counter() - t0
    if raw.dtype == np.uint16:
        with h5py.File(path, "r") as f:
            is_bf16 = f["embeddings"].id.get_type().get_fields()[2] == 8  # (spos, epos, esize, mpos, msize)
        host = (raw.astype(np.uint32) << 16).view(np.float32) if is_bf16 else raw.view(np.float16).astype(np.float32)
    else:
        host = raw.view(np.float32)
    return host, seconds


def analyze(path, out, precision):
    t0 = time.perf_counter()
    r = subprocess.run([embgeom, "analyze", "--input", path, "--dataset", "/embeddings", "--output", out,
                        "--backend", "cuda", "--topk", str(a.topk), "--precision", precision],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    whole = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"embgeom analyze --precision {precision} failed:\n{r.stderr}")
    with h5py.File(out, "r") as f:
        # The engine's phases (set-up, load, tiles, finish) and the job's own timing line.
        phases = ", ".join(f"{k[len('seconds_all_pairs_'):]} {float(v):.3f} s" for k, v in f.attrs.items()
                           if k.startswith("seconds_all_pairs_"))
        timing = next((ln.strip() for ln in r.stdout.splitlines() + [""] if "time:" in ln), "")
        return (whole, float(f.attrs["seconds_all_pairs"]), str(f.attrs.get("precision", precision)),
                f["neighbors/indices"][...], phases, timing)


def float64_reference(x, k, rows):
    """For a sample of rows: every cosine in float64 and the k-th best one (self excluded)."""
    x64 = x.double()
    sims = x64[rows] @ x64.T
    sims[torch.arange(len(rows), device=dev), rows] = -float("inf")
    return sims, torch.topk(sims, k, dim=1).values[:, -1]


def recall(found, sims, kth, rows, tie):
    """Share of the sampled rows' neighbours that belong to the float64 top-k: exactly (set
    recall), or with ties within `tie` of the k-th float64 cosine counted as hits (float32
    products round cosines by ~1e-6, so neighbours closer than that may come in either order)."""
    f = torch.from_numpy(found[rows.cpu().numpy()]).to(dev)
    got = torch.gather(sims, 1, f.clamp(min=0))
    got[f < 0] = -float("inf")
    exact_top = torch.topk(sims, f.shape[1], dim=1).indices
    strict = (f.unsqueeze(2) == exact_top.unsqueeze(1)).any(2).double().mean().item()
    tied = (got >= (kth - tie).unsqueeze(1)).double().mean().item()
    return strict, tied


print(f"# embgeom GPU benchmark — {torch.cuda.get_device_name()}, torch {torch.__version__}")
with tempfile.TemporaryDirectory() as tmp:
    for spec in a.sizes.split(","):
        size, _, dtype = spec.partition(":")
        dtype = dtype or "float32"
        V, d = map(int, size.split("x"))
        path = os.path.join(tmp, f"t{V}x{d}.h5")
        # Trained-like tables where synthesis is quick; Gaussian (much faster to make) for the big ones.
        kind = "trained" if V * d <= 100_000_000 else "gaussian"
        subprocess.run([embgeom, "synth", "--kind", kind, "--rows", str(V), "--dim", str(d), "--dtype", dtype,
                        "--output", path], check=True, stdout=subprocess.DEVNULL)
        host, read_s = read_raw(path)
        gflop = float(V) * V * d / 1e9  # the triangle: V^2/2 pairs x 2d flops
        out = os.path.join(tmp, "out.h5")
        runs = {}
        for prec in a.precisions.split(","):
            if prec == "exact" and dtype == "float32" and gflop > a.exact_max_gflop:
                continue
            runs[prec] = analyze(path, out, prec)
        x = torch.from_numpy(host).to(dev)
        x = x / x.norm(dim=1, keepdim=True)
        del host
        print(f"\n## {V}×{d} {dtype} ({kind})\n")
        print(f"read the HDF5 file (h5py, raw): {read_s:.2f} s\n")
        rows = torch.randperm(V, device=dev, generator=torch.Generator(device=dev).manual_seed(0))[:max(200, min(2000, 500_000_000 // V))]  # at most 4 GB of float64 cosines
        sims, kth = float64_reference(x, a.topk, rows)
        print(f"top-{a.topk} recall against float64 on {len(rows)} random rows: set recall / recall "
              "counting neighbours within 1e-5 of the k-th float64 cosine as hits\n")
        print("| precision asked → used | whole analyze (s) | ÷ read | all-pairs (s) | GEMM floor (s) | all-pairs ÷ floor "
              "| torch baseline (s) | torch ÷ embgeom | recall vs float64 (set / ties 1e-5) |")
        print("|---|---|---|---|---|---|---|---|---|")
        notes = []
        for prec, (whole_s, pairs_s, used, idx, phases, timing) in runs.items():
            notes.append(f"- {prec}: all-pairs phases: {phases or 'not recorded'}; {timing or 'no timing line'}")
            set_torch_precision(used)
            triangle_gemms(x, a.tile, used)  # warm-up
            floor_s = sync_time(lambda: triangle_gemms(x, a.tile, used))
            torch_s = sync_time(lambda: torch_baseline(x, a.topk, used))
            strict, tied = recall(idx, sims, kth, rows, 1e-5)
            rec = f"{strict:.5f} / {tied:.5f}"
            print(f"| {prec} → {used} | {whole_s:.2f} | {whole_s / read_s:.2f} | {pairs_s:.3f} | {floor_s:.3f} "
                  f"({gflop / floor_s / 1e3:.0f} TFLOP/s) | {pairs_s / floor_s:.2f} | {torch_s:.3f} | "
                  f"{torch_s / pairs_s:.2f} | {rec} |")
        print("\n" + "\n".join(notes))
        del x, sims
        torch.cuda.empty_cache()
