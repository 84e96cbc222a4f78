"""Time per kernel from an Nsight Compute CSV (ncu --metrics gpu__time_duration.sum --csv
--print-units base --log-file F prog ...): launches, total and share of GPU time per kernel name,
largest first, as a markdown table. Kernels run one at a time under ncu, so the shares say where
the GPU time goes, not how kernels overlap.

usage: python3 bench/gpu/ncu_kernel_times.py F.csv [title]
"""
import csv
import re
import sys
from collections import defaultdict


def short(name):
    """cuBLAS's mangled GEMM names are long: keep the function's name before its arguments."""
    name = re.sub(r"\(.*", "", name.replace("(anonymous namespace)::", ""))
    return name if len(name) <= 70 else name[:67] + "..."


def main():
    path, title = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else sys.argv[1])
    with open(path) as f:
        lines = [ln for ln in f if ln.startswith('"')]  # ncu writes its own notes before the CSV
    total = defaultdict(float)
    launches = defaultdict(int)
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        scale = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "second": 1e3}.get(row.get("Metric Unit", "nsecond"), 1e-6)
        k = short(row["Kernel Name"])
        total[k] += value * scale
        launches[k] += 1
    grand = sum(total.values())
    print(f"\n### {title}: {grand:.2f} ms of kernel time in {sum(launches.values())} launches\n")
    print("| kernel | launches | ms | share |")
    print("|---|---|---|---|")
    for k, ms in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {launches[k]} | {ms:.3f} | {100 * ms / grand if grand else 0:.1f}% |")


if __name__ == "__main__":
    main()
