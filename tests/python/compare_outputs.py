"""Asserts two embgeom output files hold bit-identical datasets (NaN == NaN).

usage: compare_outputs.py A.h5 B.h5    Attributes of the root (config, backend) may differ.
"""
import sys

import h5py
import numpy as np

a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names_a, names_b = [], []
a.visit(names_a.append)
b.visit(names_b.append)
if sorted(names_a) != sorted(names_b):
    print("MISMATCH: different objects", set(names_a) ^ set(names_b))
    sys.exit(1)
for n in names_a:
    if not isinstance(a[n], h5py.Dataset):
        for k, v in a[n].attrs.items():
            if not np.array_equal(np.asarray(v), np.asarray(b[n].attrs[k])) and not (
                np.asarray(v).dtype.kind == "f" and np.isnan(v) and np.isnan(b[n].attrs[k])):
                print("MISMATCH: attribute", n, k, v, b[n].attrs[k])
                sys.exit(1)
        continue
    x, y = a[n][...], b[n][...]
    if x.dtype.names:
        same = all(np.array_equal(x[f], y[f], equal_nan=x[f].dtype.kind == "f") for f in x.dtype.names)
    else:
        same = np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    if not same:
        print("MISMATCH: dataset", n)
        sys.exit(1)
print("ok")
