"""CPU benchmark of embgeom's whole `analyze` against FAISS exact search and a numpy script, on
the same synthetic tables, in the same run. Prints a markdown table: wall times, ratios, peak RSS
and the all-pairs phase's GFLOP/s against this machine's measured SGEMM rate.

Every contender runs under each BLAS configuration below and is credited with its best one, so no
peer is measured crippled (Debian's OpenBLAS 0.3.21 and the wheels' OpenBLAS all honour
OPENBLAS_CORETYPE; the machine environment may already set one).

usage: .venv/bin/python bench/cpu_allpairs.py [--sizes 30522x384,50257x768] [--build build]
                                             [--skip-numpy] [--avx2-only]
       (scripts/bench-setup makes .venv with faiss-cpu, numpy, h5py)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import faiss
import h5py

faiss_version = faiss.__version__

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--sizes", default="30522x384,50257x768")
p.add_argument("--build", default=os.path.join(here, "..", "build"))
p.add_argument("--topk", type=int, default=10)
p.add_argument("--skip-numpy", action="store_true")
p.add_argument("--avx2-only", action="store_true",
               help="run every contender as on a CPU without AVX-512: OpenBLAS's Haswell kernels "
                    "for all, EMBGEOM_TILE_KERNEL=avx2 for embgeom, faiss's AVX2 build")
a = p.parse_args()
embgeom = os.path.join(a.build, "embgeom")
sgemm = os.path.join(a.build, "bench", "embgeom_sgemm_rate")


def blas_envs():
    """The BLAS configurations to try: as the machine is set up, and SkylakeX kernels forced
    (with OPENBLAS_L2_SIZE left to OpenBLAS) where the CPU has AVX-512."""
    base = dict(os.environ)
    if a.avx2_only:
        e = {k: v for k, v in base.items() if k != "OPENBLAS_L2_SIZE"}
        # FAISS_OPT_LEVEL: the faiss wheel's loader picks its AVX2 build, not the AVX-512 one.
        e.update(OPENBLAS_CORETYPE="Haswell", EMBGEOM_TILE_KERNEL="avx2", FAISS_OPT_LEVEL="avx2")
        return {"AVX2 only (Haswell BLAS, EMBGEOM_TILE_KERNEL=avx2, FAISS_OPT_LEVEL=avx2)": e}
    envs = {"machine env (OPENBLAS_CORETYPE=%s)" % base.get("OPENBLAS_CORETYPE", "unset"): base}
    if "avx512f" in open("/proc/cpuinfo").read():
        e = {k: v for k, v in base.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        e["OPENBLAS_CORETYPE"] = "SkylakeX"
        envs["OPENBLAS_CORETYPE=SkylakeX"] = e
    return envs


def run_rss(cmd, env):
    """Like run, also measuring the child's peak RSS through wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, rusage.ru_maxrss * 1024, out, err


envs = blas_envs()
# Debian's python3-faiss (1.7.3, Debian's OpenBLAS), the other FAISS a user here would have.
debian_faiss = subprocess.run(["/usr/bin/python3", "-c", "import faiss, h5py"], capture_output=True).returncode == 0
print(f"# embgeom CPU benchmark — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
sgemm_rate = {}
for name, env in envs.items():
    _, _, out, err = run_rss([sgemm, "4096", "3"], env)
    sgemm_rate[name] = float(out)
    print(f"- SGEMM 4096³ ({err.strip()}): {float(out):.1f} GFLOP/s  [{name}]")
best_sgemm = max(sgemm_rate.values())

rows = []
with tempfile.TemporaryDirectory() as tmp:
    for size in a.sizes.split(","):
        V, d = map(int, size.split("x"))
        table = os.path.join(tmp, f"t{V}x{d}.h5")
        run_rss([embgeom, "synth", "--kind", "trained", "--rows", str(V), "--dim", str(d), "--seed", "1",
                 "--output", table], envs[next(iter(envs))])
        table_bytes = V * d * 4
        result = {}
        for name, env in envs.items():
            out_h5 = os.path.join(tmp, "out.h5")
            wall, rss, _, _ = run_rss([embgeom, "analyze", "--input", table, "--dataset", "/embeddings",
                                       "--vocab", "/vocab", "--output", out_h5, "--topk", str(a.topk),
                                       "--backend", "cpu"], env)
            with h5py.File(out_h5, "r") as f:
                gflops = float(f.attrs["all_pairs_gflop_per_s"])
                ap = float(f.attrs["seconds_all_pairs"])
            result.setdefault("embgeom", []).append((wall, rss, name, gflops, ap))
            wall, rss, out, _ = run_rss([sys.executable, os.path.join(here, "peers", "faiss_knn.py"), table,
                                         "/embeddings", str(a.topk)], env)
            result.setdefault("faiss", []).append((float(out), rss, name))
            if debian_faiss:
                wall, rss, out, _ = run_rss(["/usr/bin/python3", os.path.join(here, "peers", "faiss_knn.py"), table,
                                             "/embeddings", str(a.topk)], env)
                result.setdefault("faiss_debian", []).append((float(out), rss, name))
            if not a.skip_numpy:
                wall, rss, out, _ = run_rss([sys.executable, os.path.join(here, "peers", "numpy_allpairs.py"),
                                             table, "/embeddings", str(a.topk)], env)
                result.setdefault("numpy", []).append((float(out), rss, name))
        best = {k: min(v, key=lambda r: r[0]) for k, v in result.items()}
        e = best["embgeom"]
        print(f"\n## V×d = {V}×{d} (table {table_bytes / 2**20:.0f} MiB float32)\n")
        print("| contender | best time (s) | BLAS config | peak RSS (MiB) | time / FAISS search |")
        print("|---|---|---|---|---|")
        print(f"| embgeom analyze (whole job) | {e[0]:.2f} | {e[2]} | {e[1] / 2**20:.0f} | {e[0] / best['faiss'][0]:.2f} |")
        print(f"| FAISS {faiss_version} IndexFlatIP search alone (k={a.topk + 1}) | {best['faiss'][0]:.2f} | {best['faiss'][2]} | {best['faiss'][1] / 2**20:.0f} | 1.00 |")
        if "faiss_debian" in best:
            f = best["faiss_debian"]
            print(f"| FAISS 1.7.3 (Debian python3-faiss) search alone | {f[0]:.2f} | {f[2]} | {f[1] / 2**20:.0f} | {f[0] / best['faiss'][0]:.2f} |")
        if "numpy" in best:
            n = best["numpy"]
            print(f"| numpy blockwise (top-k, histogram, row means) | {n[0]:.2f} | {n[2]} | {n[1] / 2**20:.0f} | {n[0] / best['faiss'][0]:.2f} |")
        for r in result["embgeom"]:
            # embgeom's tiles use its own kernel (not OpenBLAS), so the BLAS config only names the
            # environment of the run; the yardstick is the best SGEMM rate of this machine.
            print(f"\nembgeom all-pairs phase [{r[2]}]: {r[4]:.2f} s, {r[3]:.1f} GFLOP/s = "
                  f"{100 * r[3] / best_sgemm:.0f}% of the best OpenBLAS SGEMM rate; "
                  f"peak RSS − table = {(r[1] - table_bytes) / 2**20:.0f} MiB")
        for k, v in result.items():
            print(f"- {k}: " + ", ".join(f"{x[0]:.2f} s [{x[2]}]" for x in v))
