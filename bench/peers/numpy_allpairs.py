"""The plain numpy script a user would write for what embgeom's all-pairs phase produces: row
blocks of normalised rows against the whole table, top-K (self excluded), a 2000-bin histogram of
the pairs i < j, and row means. Prints the time of that loop (seconds).
usage: numpy_allpairs.py TABLE.h5 DATASET K [BLOCK=2048]"""
import sys
import time

import h5py
import numpy as np

path, dataset, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
block = int(sys.argv[4]) if len(sys.argv) > 4 else 2048
with h5py.File(path, "r") as f:
    x = np.ascontiguousarray(f[dataset][...], dtype=np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
V = x.shape[0]
t0 = time.perf_counter()
top_idx = np.empty((V, k), dtype=np.int64)
top_sim = np.empty((V, k), dtype=np.float32)
row_sum = np.empty(V, dtype=np.float64)
hist = np.zeros(2000, dtype=np.int64)
for i0 in range(0, V, block):
    i1 = min(V, i0 + block)
    s = x[i0:i1] @ x.T
    rows = np.arange(i1 - i0)
    row_sum[i0:i1] = s.sum(axis=1, dtype=np.float64) - s[rows, rows + i0]
    upper = s[:, i0:][np.triu(np.ones((i1 - i0, V - i0), dtype=bool), k=1)]
    hist += np.bincount(np.clip(((upper + 1.0) * 1000.0).astype(np.int64), 0, 1999), minlength=2000)
    s[rows, rows + i0] = -np.inf
    part = np.argpartition(-s, k, axis=1)[:, :k]
    sims = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")
    top_idx[i0:i1] = np.take_along_axis(part, order, axis=1)
    top_sim[i0:i1] = np.take_along_axis(sims, order, axis=1)
row_mean = row_sum / (V - 1)
print(f"{time.perf_counter() - t0:.3f}")
