"""What MPI ranks cost against threads, on one machine: the same `embgeom analyze` job (CPU
backend) as one process with T threads and as R ranks of T/R threads each (mpiexec), in the same
run, alternating, best of --repeat. Prints a markdown table: wall time, all-pairs phase time
(rank 0's, which includes adding up the shares and handing the result to every rank), their
ratios to the one-process run, and whether the files are identical (they must be, bit for bit).

On one machine ranks can only lose to threads (each rank reads and normalises the table, and the
shares travel through rank 0); the ratio is that overhead. Across machines, ranks are what adds
cores or GPUs, which one process cannot.

With --matrix DTYPE every run also writes the V x V matrix (--write-matrix): one process writes
its own tiles, while the ranks send theirs to rank 0, which writes them all.

usage: python3 bench/mpi_ranks.py [--sizes 30522x384,50257x768] [--ranks 2] [--build build]
                                  [--matrix float16|float32]
       (Debian's python3 with h5py; mpiexec from scripts/setup)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--sizes", default="30522x384,50257x768")
p.add_argument("--ranks", default="2", help="comma-separated rank counts")
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--repeat", type=int, default=2)
p.add_argument("--build", default=os.path.join(here, "..", "build"))
p.add_argument("--matrix", choices=["float16", "float32"], help="also write the matrix, stored so")
a = p.parse_args()
embgeom = os.path.join(a.build, "embgeom")
mpiexec = shutil.which("mpiexec")
compare = os.path.join(here, "..", "tests", "python", "compare_outputs.py")
if not mpiexec:
    sys.exit("mpi_ranks.py: no mpiexec on PATH (scripts/setup installs MPICH)")


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    m = re.search(r"all pairs ([0-9.]+) s", r.stdout)
    return wall, float(m.group(1)) if m else float("nan")


print("machine: %d cores, %s%s" % (os.cpu_count(), subprocess.run(
    [mpiexec, "--version"], capture_output=True, text=True).stdout.splitlines()[1].strip(),
    ", writing the %s matrix" % a.matrix if a.matrix else ""))
print()
print("| table | run | wall s | all-pairs s | wall / 1 process | all-pairs / 1 process | identical |")
print("|---|---|---|---|---|---|---|")
with tempfile.TemporaryDirectory() as work:
    for size in a.sizes.split(","):
        V, d = (int(x) for x in size.split("x"))
        table = os.path.join(work, "t.h5")
        subprocess.run([embgeom, "synth", "--kind", "trained", "--rows", str(V), "--dim", str(d),
                        "-o", table], check=True, capture_output=True)
        job = ["analyze", "-i", table, "-d", "/embeddings", "--backend", "cpu"]
        if a.matrix:
            job += ["--write-matrix", "--matrix-dtype", a.matrix]
        runs = {"1 process x %d threads" % a.threads:
                [embgeom] + job + ["--threads", str(a.threads), "-o", os.path.join(work, "one.h5")]}
        for r in (int(x) for x in a.ranks.split(",")):
            t = max(1, a.threads // r)
            runs["%d ranks x %d threads" % (r, t)] = [mpiexec, "-n", str(r), embgeom] + job + [
                "--threads", str(t), "-o", os.path.join(work, "ranks%d.h5" % r)]
        best = {name: (float("inf"), float("inf")) for name in runs}
        for _ in range(a.repeat):  # alternating, so drift in the machine hits every run alike
            for name, cmd in runs.items():
                w, ap = timed(cmd)
                best[name] = (min(best[name][0], w), min(best[name][1], ap))
        base = best[next(iter(runs))]
        for name, cmd in runs.items():
            out = cmd[-1]
            same = "-" if out.endswith("one.h5") else (
                "yes" if subprocess.run([sys.executable, compare, os.path.join(work, "one.h5"), out],
                                        capture_output=True).returncode == 0 else "NO")
            w, ap = best[name]
            print("| %dx%d | %s | %.2f | %.2f | %.2f | %.2f | %s |" % (
                V, d, name, w, ap, w / base[0], ap / base[1], same))
        sys.stdout.flush()
