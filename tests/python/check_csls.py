"""Checks /csls of an `embgeom analyze --csls` output against a float64 numpy reference.

usage: check_csls.py INPUT DATASET OUTPUT K
"""
import sys

import h5py
import numpy as np

inp, ds, out, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
X = h5py.File(inp, "r")[ds][...].astype(np.float32).astype(np.float64)
o = h5py.File(out, "r")
n = np.linalg.norm(X, axis=1)
valid = np.isfinite(X).all(1) & (n > 0)
Xn = np.where(valid[:, None], X / np.where(valid, n, 1)[:, None], 0)
C = Xn @ Xn.T
np.fill_diagonal(C, -np.inf)
C[:, ~valid] = -np.inf
r = np.where(valid, np.sort(C, axis=1)[:, ::-1][:, :k].mean(1), np.nan)
if not np.allclose(o["csls/radius"][...][valid], r[valid], atol=1e-5):
    sys.exit("MISMATCH: radius")
S = 2 * C - r[:, None] - r[None, :]
S[:, ~valid] = -np.inf
got_idx, got = o["csls/indices"][...], o["csls/scores"][...]
for i in np.nonzero(valid)[0]:
    ref = np.sort(S[i])[::-1][:k]
    if not np.allclose(got[i], ref, atol=2e-5):
        sys.exit(f"MISMATCH: CSLS scores of row {i}: {got[i][:3]} vs {ref[:3]}")
    if not np.allclose(S[i, got_idx[i]], got[i], atol=2e-5):
        sys.exit(f"MISMATCH: CSLS indices of row {i}")
if not (got_idx[~valid] == -1).all():
    sys.exit("MISMATCH: invalid rows not padded")
print("ok")
