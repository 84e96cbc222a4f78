"""Checks the geometry stages of an `embgeom analyze` output against numpy.

usage: check_geometry.py TABLE.h5 OUTPUT.h5 REMOVE_TOP SIMPLEX_K
(TABLE.h5 is an `embgeom synth --kind trained` file: /embeddings, /truth/undertrained.)
"""
import sys

import h5py
import numpy as np

table, output, D, K = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = h5py.File(table, "r")
o = h5py.File(output, "r")
X = t["embeddings"][...].astype(np.float64)
planted = np.sort(t["truth/undertrained"][...])
V, d = X.shape


def check(cond, msg):
    if not cond:
        print("MISMATCH:", msg)
        sys.exit(1)


mu = X.mean(0)
C = np.cov(X, rowvar=False, ddof=0)
w, U = np.linalg.eigh(C)
w, U = w[::-1], U[:, ::-1]
ev = o["principal/eigenvalues"][...]
check(np.allclose(ev, w, rtol=1e-6, atol=1e-9 * w[0]), "eigenvalues")
check(np.isclose(o["principal"].attrs["total_variance"], w.clip(0).sum(), rtol=1e-9), "total variance")
ratio = o["principal/explained_ratio"][...]
check(np.isclose(ratio.sum(), 1.0), "explained ratios sum to 1")
pr = w.clip(0).sum() ** 2 / (w.clip(0) ** 2).sum()
check(np.isclose(o["principal"].attrs["participation_ratio"], pr, rtol=1e-6), "participation ratio")
comps = o["principal/components"][...].astype(np.float64)
check(np.allclose(np.abs((comps[:3] * U[:, :3].T).sum(1)), 1.0, atol=1e-4), "leading components")

# Rogue dimensions: contributions sum to the exact mean pairwise cosine.
Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
S = Xn.sum(0)
mean_cos = ((S ** 2).sum() - V) / (V * (V - 1))
check(np.isclose(o["principal/rogue_dimensions/contribution"][...].sum(), mean_cos, rtol=1e-6), "rogue sum")

# All-but-the-top: norms of x - mu - projections on the top D directions.
Y = X - mu
Y = Y - (Y @ U[:, :D]) @ U[:, :D].T
check(np.allclose(o["all_but_the_top/norms"][...], np.linalg.norm(Y, axis=1), rtol=1e-4, atol=1e-4), "abtt norms")
Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
rm = (Yn @ Yn.sum(0) - 1) / (V - 1)
check(np.allclose(o["all_but_the_top/cosine/row_mean"][...], rm, atol=1e-4), "abtt row means")

# Under-trained indicator: the planted tokens come first, in both the list and the candidates.
low = o["outliers/undertrained_indicator_lowest"]["token_id"][: len(planted)]
check(np.array_equal(np.sort(low), planted), f"indicator ranks planted tokens first: {low} vs {planted}")
check(set(planted) <= set(o["undertrained/candidates"][...]), "planted tokens are candidates")

# Simplex: K vertices, barycentric coordinates of the plane sum to 1, vertices map to corners.
verts = o["simplex/vertices"][...]
check(len(verts) == K and len(set(verts)) == K, "K distinct vertices")
bary = o["simplex/plane/barycentric"][...].astype(np.float64)
check(np.allclose(bary.sum(1), 1.0, atol=1e-5), "barycentric sums")
pv = o["simplex/plane/vertices"][...]
check(np.allclose(bary[pv], np.eye(3), atol=1e-5), "plane vertices at the corners")
counts = o["simplex/extremeness/counts"][...]
check(counts.sum() == 2 * o["simplex/extremeness"].attrs["directions"], "extremeness counts sum to 2M")
check((o["simplex/corners/assignment"][...][verts] == np.arange(K)).all(), "each vertex is in its own corner")
print("ok")
