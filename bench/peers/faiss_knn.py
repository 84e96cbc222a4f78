"""FAISS exact search, as a user would run it: IndexFlatIP on L2-normalised rows, every row queried
against the whole table, k = K + 1 (self included). Prints the search time alone (seconds).
usage: faiss_knn.py TABLE.h5 DATASET K"""
import sys
import time

import faiss
import h5py
import numpy as np

path, dataset, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(path, "r") as f:
    x = np.ascontiguousarray(f[dataset][...], dtype=np.float32)
faiss.normalize_L2(x)
index = faiss.IndexFlatIP(x.shape[1])
index.add(x)
t0 = time.perf_counter()
D, I = index.search(x, k + 1)
print(f"{time.perf_counter() - t0:.3f}")
