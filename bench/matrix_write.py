"""How fast the result file takes the cosine matrix (--write-matrix), beside the peer a user would
otherwise use: h5py writing the same N x N matrix from a numpy array in memory (converted with
numpy's astype when stored as float16), in the same run, alternating, best of --repeat.

embgeom is timed as its engines hand the matrix over (build/bench/embgeom_matrix_write_rate):
one thread handing 8192 x 8192 tiles (the CUDA engine; an MPI job's rank 0 receiving every
rank's tiles), and every thread handing 1024 x 1024 tiles (the CPU engine). h5py gets the whole
matrix at once, its best case (no tiling, one contiguous write). Each writes to a file in --dir
(default: a temporary folder); the page cache makes these memory-bound rates, not disk rates.

usage: python3 bench/matrix_write.py [--n 16384] [--dtype float16,float32] [--repeat 2]
       (Debian's python3 with h5py and numpy)
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
p.add_argument("--repeat", type=int, default=2)
p.add_argument("--build", default=os.path.join(here, "..", "build"))
p.add_argument("--dir", default=None)
a = p.parse_args()
rate = os.path.join(a.build, "bench", "embgeom_matrix_write_rate")


def embgeom(n, dtype, mode, path):
    r = subprocess.run([rate, str(n), dtype, mode, path], capture_output=True, text=True, check=True)
    return float(re.search(r": ([0-9.]+) s", r.stdout).group(1))


def h5py_peer(m, dtype, path):
    t = time.perf_counter()
    with h5py.File(path, "w") as f:
        f.create_dataset("cosine/matrix", data=m.astype(dtype) if dtype != "float32" else m)
    return time.perf_counter() - t


with tempfile.TemporaryDirectory(dir=a.dir) as work:
    path = os.path.join(work, "m.h5")
    rng = np.random.default_rng(1)
    m = rng.uniform(-1, 1, size=(a.n, a.n)).astype(np.float32)
    print("machine: %d cores; %d x %d matrix, best of %d" % (os.cpu_count(), a.n, a.n, a.repeat))
    print()
    print("| stored as | h5py from numpy s | embgeom, one thread, 8192² tiles s | embgeom, every thread, 1024² tiles s | one thread / h5py | every thread / h5py |")
    print("|---|---|---|---|---|---|")
    for dtype in a.dtype.split(","):
        best = {"h5py": float("inf"), "one": float("inf"), "every": float("inf")}
        for _ in range(a.repeat):
            best["h5py"] = min(best["h5py"], h5py_peer(m, dtype, path))
            best["one"] = min(best["one"], embgeom(a.n, dtype, "one-thread", path))
            best["every"] = min(best["every"], embgeom(a.n, dtype, "every-thread", path))
        print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            dtype, best["h5py"], best["one"], best["every"], best["one"] / best["h5py"],
            best["every"] / best["h5py"]))
