"""embgeom analyze as an MPI job of real ranks (mpiexec), against the same job in one process.

usage: check_mpi_ranks.py EMBGEOM EMULATED MPIEXEC WORKDIR SEED
  EMULATED: embgeom linked to the emulated CUDA backend (its CUDA path under MPI), or "" to skip.

Checks, printing "ok" at the end:
  - 2 and 3 ranks on the CPU give the one-process file bit for bit (every dataset; the root's
    mpi_ranks attribute says how many ran), with every geometry stage and null model;
  - --write-matrix: the matrix rank 0 writes from every rank's tiles is the one-process matrix
    bit for bit (float32 and float16, with non-finite rows, on the CPU and the emulated CUDA
    backend); a job whose shares fail while it writes leaves no file;
  - 2 ranks of the emulated CUDA backend in the re-scored product (auto, several tile pairs), on
    two devices and both on one (which then holds no table copy), and
    3 on a bfloat16 table (the raw 16-bit product), give the one-process file bit for bit;
  - failures: a rank that cannot read its input stops the job with that rank's one-line error
    (exit 3), leaving an earlier file at the output path untouched and nothing beside it;
    ranks given another configuration, or another table behind the same path, stop with a
    one-line usage error naming the first difference (exit 2);
    a command other than analyze is a one-line usage error (exit 2); shares
    that fail inside the shared pass (emulated device memory) stop every rank with one line
    (exit 4); ranks that end on different backends (auto: CUDA on one, the CPU on a machine without a GPU)
    stop with a one-line usage error.
"""
import os
import re
import subprocess
import sys

import h5py

embgeom, emulated, mpiexec, work, seed = sys.argv[1:6]
os.chdir(work)
compare = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_outputs.py")


def run(args, expect_rc=0, timeout=300):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if r.returncode != expect_rc:
        print("FAIL: exit", r.returncode, "instead of", expect_rc, "for", " ".join(args))
        print(r.stdout[-3000:], r.stderr[-3000:])
        sys.exit(1)
    return r


def same_files(a, b):
    r = subprocess.run([sys.executable, compare, a, b], capture_output=True, text=True)
    if r.returncode != 0 or "ok" not in r.stdout:
        print("FAIL:", a, "and", b, "differ:", r.stdout, r.stderr)
        sys.exit(1)


def ranks_attribute(path):
    with h5py.File(path, "r") as f:
        return int(f.attrs["mpi_ranks"])


def one_error_line(r, must_hold):
    lines = [l for l in r.stderr.splitlines() if l.startswith("embgeom")]
    if len(lines) != 1 or must_hold not in lines[0]:
        print("FAIL: wanted one error line holding", repr(must_hold), "got:", r.stderr)
        sys.exit(1)


run([embgeom, "synth", "--kind", "trained", "--rows", "2600", "--dim", "40", "--seed", seed,
     "-o", "table.h5"])
# Every stage: the shared passes (main, centred, CSLS, the null models' and all-but-the-top's
# all-pairs) and the ones every rank computes whole.
job = ["analyze", "--input", "table.h5", "--dataset", "embeddings", "--csls", "--center",
       "--topk", "7", "--dup-threshold", "0.995", "--principal", "--remove-top", "2",
       "--undertrained", "--simplex", "4", "--null", "isotropic,matched"]

# The CPU: one process, then 2 and 3 ranks.
run([embgeom] + job + ["--backend", "cpu", "--output", "one.h5"])
assert ranks_attribute("one.h5") == 1
for n in (2, 3):
    out = "ranks%d.h5" % n
    # One thread per rank (the one-process run has the machine's): the bits must not care, and
    # ranks spinning in MPI while others compute do not crowd the cores.
    r = run([mpiexec, "-n", str(n), embgeom] + job + ["--backend", "cpu", "--threads", "1",
                                                      "--output", out])
    same_files("one.h5", out)
    assert ranks_attribute(out) == n, ranks_attribute(out)
    with h5py.File(out, "r") as f:  # which machine and backend computed each share
        lines = f.attrs["mpi_rank_backends"].splitlines()
    assert [l.split(" on ")[0] for l in lines] == ["rank %d" % i for i in range(n)], lines
    assert all(": cpu (" in l and "1 threads" in l for l in lines), lines
    if r.stdout.count("wrote " + out) != 1:
        print("FAIL: rank 0 alone should log; got:", r.stdout)
        sys.exit(1)

# Without --threads the ranks that may run on the same cores split them: MPICH binds no rank, so
# each of 2 ranks takes half the machine; a launcher that binds each rank to cores of its own
# leaves each those. Either way no more threads in all than cores, and the same bits.
r = run([mpiexec, "-n", "2", embgeom] + job + ["--backend", "cpu", "--output", "by_default.h5"])
same_files("one.h5", "by_default.h5")
with h5py.File("by_default.h5", "r") as f:
    lines = f.attrs["mpi_rank_backends"].splitlines()
threads = [int(re.search(r"(\d+) threads\)", l).group(1)) for l in lines]
cores = len(os.sched_getaffinity(0))
assert len(threads) == 2 and min(threads) >= 1, lines
assert sum(threads) <= max(cores, 2), "%s threads on %d cores: %s" % (threads, cores, lines)

# A rank that cannot read its input (MPMD: rank 2 is given another path), over an earlier result.
with open("kept.h5", "wb") as f:
    f.write(b"an earlier result")
cpu_job = job + ["--backend", "cpu", "--output", "kept.h5"]
bad = [a if a != "table.h5" else "missing.h5" for a in cpu_job]
r = run([mpiexec, "-n", "2", embgeom] + cpu_job + [":", "-n", "1", embgeom] + bad, expect_rc=3)
one_error_line(r, "rank 2: missing.h5")
with open("kept.h5", "rb") as f:
    assert f.read() == b"an earlier result", "the earlier file was touched"
left = [n for n in os.listdir(".") if n.startswith(".kept.h5")]
assert not left, "temporary files left: %s" % left

# Ranks given another configuration, or another table behind the same relative path (each rank
# in its own working folder, as on machines with their own disks): a usage error naming the
# first difference, before anything is shared.
small_job = ["analyze", "--input", "t.h5", "--dataset", "embeddings", "--backend", "cpu",
             "--output", os.path.join(work, "diff.h5")]
for folder, rows, seed_offset in (("a", 700, 0), ("b", 700, 1), ("c", 701, 0)):
    os.mkdir(folder)
    run([embgeom, "synth", "--rows", str(rows), "--dim", "12", "--seed", str(int(seed) + seed_offset),
         "-o", os.path.join(folder, "t.h5")])
in_folder = lambda f: ["-n", "1", "-wdir", os.path.join(work, f), embgeom]


def two_ranks(first, second):  # one mpiexec, two argument sets (MPMD)
    return run([mpiexec] + first + [":"] + second, expect_rc=2, timeout=120)


r = two_ranks(in_folder("a") + small_job, in_folder("a") + small_job + ["--topk", "9"])
one_error_line(r, "rank 1: another configuration than rank 0's (first difference: 'topk = 9'")
r = two_ranks(in_folder("a") + small_job, in_folder("b") + small_job)
one_error_line(r, "rank 1: another table than rank 0's (first difference: 'values hash to")
r = two_ranks(in_folder("a") + small_job, in_folder("c") + small_job)
one_error_line(r, "rank 1: another table than rank 0's (first difference: 'shape = 701 x 12'")
assert not os.path.exists("diff.h5")

# --write-matrix: rank 0 writes the matrix from every rank's tiles. Rows that hold a NaN make
# tiles of awkward extents (invalid rows go with the tile before them); small blocks make many.
with h5py.File("table.h5", "r") as f:
    rows = f["embeddings"][:]
rows[[0, 17, 1300, len(rows) - 1]] = float("nan")
with h5py.File("holes.h5", "w") as f:
    f["embeddings"] = rows
matrix_job = ["analyze", "--input", "holes.h5", "--dataset", "embeddings", "--topk", "5",
              "--center", "--backend", "cpu", "--block-rows", "300", "--write-matrix"]
# Compressed (rank 0's receiving thread deflates the other ranks' chunks) and not.
for dtype, n, gzip in (("float32", 3, 0), ("float16", 2, 1)):
    job = matrix_job + ["--matrix-dtype", dtype, "--matrix-gzip", str(gzip)]
    run([embgeom] + job + ["--output", "m1.h5"])
    run([mpiexec, "-n", str(n), embgeom] + job + ["--threads", "1", "--output", "m%d.h5" % n])
    same_files("m1.h5", "m%d.h5" % n)
    with h5py.File("m%d.h5" % n, "r") as f:
        assert f["cosine/matrix"].shape == (len(rows), len(rows)), f["cosine/matrix"].shape
        assert str(f["cosine/matrix"].dtype) == dtype, f["cosine/matrix"].dtype
        assert f["cosine/matrix"].compression_opts == (gzip or None), f["cosine/matrix"].compression
r = run([mpiexec, "-n", "2", embgeom, "synth", "--rows", "10", "--dim", "4", "-o", "s.h5"],
        expect_rc=2)
one_error_line(r, "only `embgeom analyze` runs as an MPI job")
assert not os.path.exists("s.h5")

if emulated:
    # The CUDA path: deferred re-scores merged across ranks, CSLS shared, on the emulated device.
    small = ["analyze", "--input", "small.h5", "--dataset", "embeddings", "--csls",
             "--topk", "6", "--block-rows", "256", "--backend", "cuda", "--precision", "auto"]
    run([embgeom, "synth", "--kind", "trained", "--rows", "900", "--dim", "24", "--seed", seed,
         "-o", "small.h5"])
    run([emulated] + small + ["--output", "cuda1.h5"])
    run([mpiexec, "-n", "2", emulated] + small + ["--output", "cuda2.h5"])
    same_files("cuda1.h5", "cuda2.h5")
    # Both ranks pinned to one GPU (--devices 0): they split its memory and do not hold the table
    # on it (one process does), with the same bits.
    run([mpiexec, "-n", "2", emulated] + small + ["--output", "cuda2on1.h5", "--devices", "0"])
    same_files("cuda1.h5", "cuda2on1.h5")
    with h5py.File("cuda1.h5", "r") as one, h5py.File("cuda2on1.h5", "r") as two:
        assert int(one.attrs["table_on_device"]) == 1 and int(two.attrs["table_on_device"]) == 0
        assert "mpi_rank_backends" not in one.attrs
        lines = two.attrs["mpi_rank_backends"].splitlines()
    assert len(lines) == 2 and all(": cuda (" in l and l.endswith(", device 0") for l in lines), lines
    with h5py.File("cuda2.h5", "r") as f:
        assert f.attrs["precision"] in ("tf32", b"tf32"), f.attrs["precision"]
    # The matrix from the emulated CUDA engines' tiles (the fast tf32 cosines, as in one process).
    run([emulated] + small + ["--write-matrix", "--matrix-gzip", "2", "--output", "cm1.h5"])
    run([mpiexec, "-n", "3", emulated] + small + ["--write-matrix", "--matrix-gzip", "2",
                                                  "--output", "cm3.h5"])
    same_files("cm1.h5", "cm3.h5")
    # A table stored as bfloat16: the raw 16-bit product, nothing to re-score.
    run([embgeom, "synth", "--kind", "trained", "--rows", "700", "--dim", "24", "--seed", seed,
         "--dtype", "bfloat16", "-o", "small.h5"])
    run([emulated] + small + ["--output", "bf1.h5"])
    run([mpiexec, "-n", "3", emulated] + small + ["--output", "bf3.h5", "--threads", "1"])
    same_files("bf1.h5", "bf3.h5")
    with h5py.File("bf3.h5", "r") as f:
        assert f.attrs["precision"] in ("bf16-raw", b"bf16-raw"), f.attrs["precision"]
    # The shares fail inside the shared pass (a device budget too small for any plan): every
    # rank stops there, and the error is printed once.
    r = run([mpiexec, "-n", "2", emulated] + small + ["--output", "f.h5", "--write-matrix",
                                                      "--device-memory-budget", "64K"],
            expect_rc=4)
    one_error_line(r, "CUDA all-pairs: not enough device memory")
    assert not os.path.exists("f.h5")
    # --backend auto where rank 1's machine has no GPU: rank 0 would run CUDA and rank 1 the CPU,
    # whose shares do not add up; the ranks must agree on one backend.
    auto = [a if a != "cuda" else "auto" for a in small] + ["--output", "mixed.h5"]
    r = run([mpiexec, "-n", "1", emulated] + auto + [":", "-n", "1", "-env",
                                                     "EMBGEOM_EMULATED_NO_DEVICE", "no-driver",
                                                     emulated] + auto, expect_rc=2)
    one_error_line(r, "rank 1: this rank runs the cpu backend and rank 0 the cuda backend")
    assert not os.path.exists("mixed.h5")

print("ok")
