"""Checks an `embgeom analyze` output file against a float64 numpy reference of its input.

usage: check_analysis.py INPUT DATASET OUTPUT [--bias DATASET] [--vocab DATASET] [--topk K]
Exits non-zero with a message on the first mismatch.
"""
import argparse
import sys

import h5py
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("input")
p.add_argument("dataset")
p.add_argument("output")
p.add_argument("--bias")
p.add_argument("--vocab")
p.add_argument("--topk", type=int, default=10)
a = p.parse_args()


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


def close(name, got, want, rtol, atol=0.0):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail(f"{name}: shape {got.shape} != {want.shape}")
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        fail(f"{name}: NaN positions differ")
    m = ~np.isnan(want)
    if not np.allclose(got[m], want[m], rtol=rtol, atol=atol):
        i = np.argmax(np.abs(got[m] - want[m]))
        fail(f"{name}: max diff at {i}: {got[m][i]} vs {want[m][i]}")


with h5py.File(a.input, "r") as f:
    # embgeom computes on float32 rows (float64 accumulation), whatever the stored type.
    X = f[a.dataset][...].astype(np.float32).astype(np.float64)
    bias = f[a.bias][...].astype(np.float64).reshape(-1) if a.bias else None
    vocab = [s.decode() if isinstance(s, bytes) else s for s in f[a.vocab][...]] if a.vocab else None
V, d = X.shape
finite = np.isfinite(X).all(axis=1)
Xf = np.where(finite[:, None], X, 0.0)
norms = np.where(finite, np.sqrt((Xf**2).sum(1)), np.nan)
centroid = Xf[finite].mean(axis=0)
centered = np.where(finite, np.sqrt(((Xf - centroid) ** 2).sum(1)), np.nan)

with h5py.File(a.output, "r") as o:
    close("norms", o["norms"][...], norms, 1e-6)
    close("centroid", o["centroid"][...], centroid, 1e-9, 1e-12)
    close("centered_norms", o["centered_norms"][...], centered, 1e-5, 1e-6)
    if bias is not None:
        bn = np.where(finite, np.sqrt(((Xf - bias) ** 2).sum(1)), np.nan)
        close("bias_norms", o["bias_norms"][...], bn, 1e-5, 1e-6)

    # Summaries are computed from the stored float32 values: check them against numpy.
    for q, key in [("norms", "norms"), ("centered_norms", "centered_norms")]:
        vals = o[key][...].astype(np.float64)
        vals = vals[~np.isnan(vals)]
        g = o["stats/" + q]
        close(q + " mean", g.attrs["mean"], vals.mean(), 1e-12)
        close(q + " std", g.attrs["std"], vals.std(), 1e-9)
        close(q + " min", g.attrs["min"], vals.min(), 0)
        close(q + " max", g.attrs["max"], vals.max(), 0)
        close(q + " quantiles", g["quantiles"][...], np.quantile(vals, g["quantile_levels"][...]), 1e-12)
        close(q + " count", g.attrs["count"], len(vals), 0)

    # Outlier lists: the same ranking (ties by lower id) and robust z-scores as numpy gives.
    def check_list(name, values, largest):
        vals = np.asarray(values, dtype=np.float64)
        ids = np.nonzero(~np.isnan(vals))[0]
        key = -vals[ids] if largest else vals[ids]
        order = ids[np.lexsort((ids, key))]
        t = o["outliers/" + name][...]
        n = len(t)
        if not np.array_equal(t["token_id"], order[:n]):
            fail(f"{name}: ids {t['token_id'][:5]} vs {order[:5]}")
        med = np.median(vals[ids])
        mad = np.median(np.abs(vals[ids] - med))
        close(name + " score", t["score"], vals[order[:n]], 0)
        close(name + " zscore", t["zscore"], (vals[order[:n]] - med) / (1.4826 * mad), 1e-9)
        if vocab is not None:
            toks = [s.decode() if isinstance(s, bytes) else s for s in t["token"]]
            if toks != [vocab[i] for i in order[:n]]:
                fail(f"{name}: token strings differ")

    check_list("closest_to_centroid", o["centered_norms"][...], False)
    check_list("farthest_from_centroid", o["centered_norms"][...], True)
    check_list("smallest_norm", o["norms"][...], False)
    check_list("largest_norm", o["norms"][...], True)
    nf = o["outliers/non_finite"][...]
    if not np.array_equal(nf["token_id"], np.nonzero(~finite)[0][: len(nf)]):
        fail("non_finite ids")

    if "neighbors" in o:
        valid = finite & (norms > 0)
        Xn = np.where(valid[:, None], Xf / np.where(norms > 0, norms, 1)[:, None], 0.0)
        C = Xn @ Xn.T
        n = valid.sum()
        rm = np.where(valid, (C[:, valid].sum(1) - 1.0) / (n - 1), np.nan)
        close("row_mean", o["cosine/row_mean"][...], rm, 1e-5, 1e-6)
        sims = o["neighbors/similarities"][...]
        idx = o["neighbors/indices"][...]
        for i in np.nonzero(valid)[0]:
            c = C[i].copy()
            c[~valid] = -np.inf
            c[i] = -np.inf
            ref = np.sort(c)[::-1][: a.topk]
            close(f"neighbour sims of {i}", sims[i], ref, 1e-5, 1e-5)
            close(f"neighbour index sims of {i}", C[i, idx[i]], sims[i], 1e-5, 1e-5)
        pairs = n * (n - 1) // 2
        if o["cosine/histogram/counts"][...].sum() != pairs:
            fail("histogram total")
        iu = np.triu_indices(V, 1)
        m = valid[iu[0]] & valid[iu[1]]
        cv = C[iu][m]
        close("pair cosine mean", o["stats/pair_cosine"].attrs["mean"], cv.mean(), 1e-6, 1e-9)
        close("pair cosine std", o["stats/pair_cosine"].attrs["std"], cv.std(), 1e-4, 1e-7)
print("ok")
