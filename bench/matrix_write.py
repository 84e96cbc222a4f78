"""How fast the result file takes the cosine matrix (--write-matrix), beside the peer a user would
otherwise use: h5py writing the same N x N matrix from a numpy array in memory (converted with
numpy's astype when stored as float16), in the same run, alternating, best of --repeat.

embgeom is timed as its engines hand the matrix over (build/bench/embgeom_matrix_write_rate):
one thread handing 8192 x 8192 tiles (the CUDA engine; an MPI job's rank 0 receiving every
rank's tiles), and every thread handing 1024 x 1024 tiles (the CPU engine). h5py gets the whole
matrix at once, its best case (no tiling, one contiguous write; with --gzip, the same 256 x 256
chunks, shuffle and deflate level as embgeom's file, which HDF5 compresses on one thread). Each
writes to a file in --dir (default: a temporary folder); the page cache makes these memory-bound
rates, not disk rates. The values are distributed like a trained vocabulary's cosines (mostly
small, slightly positive), so that gzip meets what it meets in a real matrix.

usage: python3 bench/matrix_write.py [--n 16384] [--dtype float16,float32] [--gzip 0,1]
       [--repeat 2]   (Debian's python3 with h5py and numpy)
"""
import argparse
import os
import re
import subprocess
import tempfile
import time

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=16384)
p.add_argument("--dtype", default="float16,float32")
p.add_argument("--gzip", default="0")
p.add_argument("--repeat", type=int, default=2)
p.add_argument("--build", default=os.path.join(here, "..", "build"))
p.add_argument("--dir", default=None)
a = p.parse_args()
rate = os.path.join(a.build, "bench", "embgeom_matrix_write_rate")


def embgeom(n, dtype, mode, gzip, path):
    r = subprocess.run([rate, str(n), dtype, mode, path, str(gzip)], capture_output=True,
                       text=True, check=True)
    return float(re.search(r": ([0-9.]+) s", r.stdout).group(1)), os.path.getsize(path)


def h5py_peer(m, dtype, gzip, path):
    t = time.perf_counter()
    with h5py.File(path, "w") as f:
        data = m.astype(dtype) if dtype != "float32" else m
        if gzip:
            f.create_dataset("cosine/matrix", data=data, chunks=(256, 256), shuffle=True,
                             compression="gzip", compression_opts=gzip)
        else:
            f.create_dataset("cosine/matrix", data=data)
    return time.perf_counter() - t, os.path.getsize(path)


with tempfile.TemporaryDirectory(dir=a.dir) as work:
    path = os.path.join(work, "m.h5")
    rng = np.random.default_rng(1)
    m = np.clip(rng.normal(0.03, 0.08, size=(a.n, a.n)), -1, 1).astype(np.float32)
    print("machine: %d cores; %d x %d matrix, best of %d" % (os.cpu_count(), a.n, a.n, a.repeat))
    print()
    print("| stored as | gzip | h5py from numpy s | embgeom, one thread, 8192² tiles s | embgeom, every thread, 1024² tiles s | one thread / h5py | every thread / h5py | file MB h5py / embgeom |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype in a.dtype.split(","):
        for gzip in [int(g) for g in a.gzip.split(",")]:
            best = {"h5py": float("inf"), "one": float("inf"), "every": float("inf")}
            size = {}
            for _ in range(a.repeat):
                for name, run in [("h5py", lambda: h5py_peer(m, dtype, gzip, path)),
                                  ("one", lambda: embgeom(a.n, dtype, "one-thread", gzip, path)),
                                  ("every", lambda: embgeom(a.n, dtype, "every-thread", gzip, path))]:
                    s, size[name] = run()
                    best[name] = min(best[name], s)
            print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f / %.0f |" % (
                dtype, gzip, best["h5py"], best["one"], best["every"], best["one"] / best["h5py"],
                best["every"] / best["h5py"], size["h5py"] / 1e6, size["every"] / 1e6))
