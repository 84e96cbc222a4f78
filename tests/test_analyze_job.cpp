// The analyze job end to end through the real binary: real HDF5 files written by h5py, results
// read back by h5py and checked against a float64 numpy reference.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/cpu_affinity.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::file_exists;
using test::run_embgeom;
using test::run_python;
using test::run_python_file;
using test::shell_quote;
using test::TempDir;

/// Writes a random table (with a NaN row, an Inf row and a zero row), a vocab and a bias.
void write_random_input(const std::string& path, int rows, int dims, std::uint64_t seed,
                        const std::string& dtype = "float32") {
    run_python(R"(
import sys, h5py, numpy as np
path, V, d, seed, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = np.random.default_rng(seed)
X = rng.normal(size=(V, d)) + rng.normal(size=d) * 0.5
X[3, 1 % d] = np.nan
X[5, 0] = np.inf
X[7] = 0.0
with h5py.File(path, "w") as f:
    f.create_dataset("emb", data=X.astype(dtype), chunks=(min(V, 16), d), compression="gzip")
    f.create_dataset("vocab", data=np.array(["tok%d_é" % i for i in range(V)], dtype=h5py.string_dtype()))
    f.create_dataset("bias", data=rng.normal(size=d))
)", path + " " + std::to_string(rows) + " " + std::to_string(dims) + " " + std::to_string(seed) + " " + dtype);
}

std::string analyze_args(const std::string& in, const std::string& out) {
    return "analyze --input " + shell_quote(in) + " --dataset emb --output " + shell_quote(out) +
           " --vocab vocab --bias-dataset bias --backend cpu";
}

/// Files in dir other than the expected ones (a failed run must leave no temp file behind).
std::vector<std::string> listing(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
        closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

TEST(AnalyzeJob, MatchesFloat64Reference) {
    TempDir dir;
    const std::string in = dir.file("in.h5"), out = dir.file("out.h5");
    write_random_input(in, 300, 24, test::fresh_seed());
    const auto r = run_embgeom(analyze_args(in, out) + " --topk 6 --outliers 20");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run_python_file("check_analysis.py", shell_quote(in) + " emb " + shell_quote(out) +
                                             " --bias bias --vocab vocab --topk 6");
}

TEST(AnalyzeJob, CslsListsMatchFloat64Reference) {
    TempDir dir;
    const std::string in = dir.file("in.h5"), out = dir.file("out.h5");
    write_random_input(in, 260, 12, test::fresh_seed());
    const auto r = run_embgeom(analyze_args(in, out) + " --topk 5 --csls --block-rows 64");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run_python_file("check_csls.py", shell_quote(in) + " emb " + shell_quote(out) + " 5");
    EXPECT_EQ(run_embgeom(analyze_args(in, dir.file("x.h5")) + " --csls --no-all-pairs").exit_code, 2);
}

TEST(AnalyzeJob, Float16AndFloat64InputsMatchReference) {
    for (const char* dtype : {"float16", "float64"}) {
        TempDir dir;
        const std::string in = dir.file("in.h5"), out = dir.file("out.h5");
        write_random_input(in, 120, 9, test::fresh_seed(), dtype);
        const auto r = run_embgeom(analyze_args(in, out) + " --topk 4");
        ASSERT_EQ(r.exit_code, 0) << dtype << r.err;
        run_python_file("check_analysis.py", shell_quote(in) + " emb " + shell_quote(out) +
                                                 " --bias bias --vocab vocab --topk 4");
    }
}

TEST(AnalyzeJob, IdenticalForAnyBlockSizeThreadsAndBudget) {
    TempDir dir;
    const std::string in = dir.file("in.h5");
    write_random_input(in, 257, 33, test::fresh_seed());
    const std::string base = dir.file("base.h5");
    ASSERT_EQ(run_embgeom(analyze_args(in, base) + " --threads 2 --center").exit_code, 0);
    const char* variants[] = {"--block-rows 7 --threads 1", "--block-rows 64 --threads 2",
                              "--memory-budget 64K --threads 2", "--block-rows 1000 --threads 1"};
    int n = 0;
    for (const char* v : variants) {
        const std::string out = dir.file("v" + std::to_string(n++) + ".h5");
        const auto r = run_embgeom(analyze_args(in, out) + " --center " + v);
        ASSERT_EQ(r.exit_code, 0) << v << "\n" << r.err;
        run_python_file("compare_outputs.py", shell_quote(base) + " " + shell_quote(out));
    }
}

// The stages that call BLAS/LAPACK from the host (covariance, eigendecomposition, all-but-the-top,
// the null models' own) give the same file for any --threads and whatever OpenMP setting the
// process starts with (OMP_NUM_THREADS=1 stands for a one-core cpuset or an MPI rank bound to a
// core: OpenBLAS's OpenMP build sizes its calls by it). 160 columns: three panels of the covariance.
TEST(AnalyzeJob, GeometryStagesIdenticalForAnyThreadsAndOpenMpSetting) {
    TempDir dir;
    const std::string in = dir.file("in.h5");
    write_random_input(in, 400, 160, test::fresh_seed());
    const std::string stages =
        " --center --principal --remove-top 2 --null isotropic --undertrained --simplex 3";
    const std::string base = dir.file("base.h5");
    ASSERT_EQ(run_embgeom(analyze_args(in, base) + stages + " --threads 2").exit_code, 0);
    struct Variant {
        const char* environment;
        const char* flags;
    };
    const Variant variants[] = {{"", "--threads 1"},
                                {"", "--threads 3"},
                                {"OMP_NUM_THREADS=1", "--threads 2"},
                                {"OMP_NUM_THREADS=1", ""},
                                {"OMP_NUM_THREADS=3", "--threads 1"}};
    int n = 0;
    for (const Variant& v : variants) {
        const std::string out = dir.file("v" + std::to_string(n++) + ".h5");
        const auto r = test::run_command(std::string(v.environment) + " " +
                                         shell_quote(test::embgeom_binary()) + " " +
                                         analyze_args(in, out) + stages + " " + v.flags);
        ASSERT_EQ(r.exit_code, 0) << v.environment << " " << v.flags << "\n" << r.err;
        run_python_file("compare_outputs.py", shell_quote(base) + " " + shell_quote(out));
    }
}

TEST(ThreadNote, OnlyWhenThreadsExceedTheCoresAndNamesTheRemedy) {
    EXPECT_EQ(thread_oversubscription_note(0, 1), "") << "0 threads means one per core";
    EXPECT_EQ(thread_oversubscription_note(2, 2), "");
    EXPECT_EQ(thread_oversubscription_note(3, 16), "");
    const std::string n = thread_oversubscription_note(8, 1);
    EXPECT_NE(n.find("--threads 8 but this process may run on 1 core "), std::string::npos) << n;
    EXPECT_NE(n.find("--map-by slot:PE=8"), std::string::npos) << n;
    EXPECT_NE(n.find("--cpus-per-task=8"), std::string::npos) << n;
    EXPECT_EQ(n.find('\n'), std::string::npos) << "one line";
    EXPECT_NE(thread_oversubscription_note(4, 2).find("on 2 cores "), std::string::npos);
    // Ranks of one job on the same cores: their threads add up.
    EXPECT_EQ(thread_oversubscription_note(2, 4, 2), "");
    const std::string shared = thread_oversubscription_note(2, 2, 2);
    EXPECT_NE(shared.find("on 2 cores (its CPU affinity and CPU quota), as do 1 other rank of "
                          "this job with 2 each"),
              std::string::npos)
        << shared;
    EXPECT_NE(thread_oversubscription_note(1, 2, 3).find("as do 2 other ranks"),
              std::string::npos);
}

// A process bound to one core (taskset here; an MPI launcher's binding in a job) and asked for 2
// threads says so, once; asked for 1 it says nothing. Its results do not change.
TEST(AnalyzeJob, ThreadsBeyondTheBoundCoresGetANote) {
    if (test::run_command("command -v taskset").exit_code != 0)
        GTEST_SKIP() << "taskset (util-linux) is not on this machine";
    ASSERT_GE(cores_this_process_may_use(), 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int first = 0;
    while (!CPU_ISSET(first, &set)) ++first;
    TempDir dir;
    const std::string in = dir.file("in.h5");
    write_random_input(in, 100, 8, test::fresh_seed());
    const std::string bound = "taskset -c " + std::to_string(first) + " " +
                              shell_quote(test::embgeom_binary()) + " ";
    const auto two = test::run_command(bound + analyze_args(in, dir.file("a.h5")) + " --threads 2");
    ASSERT_EQ(two.exit_code, 0) << two.err;
    const std::string all = two.out + two.err;
    const std::string note = "embgeom: note: --threads 2 but this process may run on 1 core ";
    EXPECT_NE(all.find(note), std::string::npos) << all;
    EXPECT_EQ(all.find(note), all.rfind(note)) << "said once";
    const auto one = test::run_command(bound + analyze_args(in, dir.file("b.h5")) + " --threads 1");
    ASSERT_EQ(one.exit_code, 0) << one.err;
    EXPECT_EQ((one.out + one.err).find("may run on"), std::string::npos) << one.out << one.err;
    // The default is a thread per core the process may use (one here), or OMP_NUM_THREADS.
    const auto by_default = test::run_command(bound + analyze_args(in, dir.file("c.h5")));
    ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
    EXPECT_NE(by_default.out.find(", 1 threads)"), std::string::npos) << by_default.out;
    EXPECT_EQ((by_default.out + by_default.err).find("may run on"), std::string::npos);
    const auto from_env = test::run_command("OMP_NUM_THREADS=3 " + bound +
                                            analyze_args(in, dir.file("d.h5")));
    ASSERT_EQ(from_env.exit_code, 0) << from_env.err;
    EXPECT_NE(from_env.out.find(", 3 threads)"), std::string::npos) << from_env.out;
    run_python_file("compare_outputs.py", shell_quote(dir.file("a.h5")) + " " +
                                              shell_quote(dir.file("b.h5")));
}

TEST(AnalyzeJob, WrittenMatrixMatchesReferenceInBothDtypes) {
    TempDir dir;
    const std::string in = dir.file("in.h5");
    write_random_input(in, 150, 12, test::fresh_seed());
    for (const char* dtype : {"float32", "float16"}) {
        const std::string out = dir.file(std::string(dtype) + ".h5");
        const auto r = run_embgeom(analyze_args(in, out) + " --write-matrix --block-rows 64 --matrix-gzip 3 --matrix-dtype " + dtype);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        run_python(R"(
import sys, h5py, numpy as np
X = h5py.File(sys.argv[1])["emb"][...].astype(np.float32).astype(np.float64)
M = h5py.File(sys.argv[2])["cosine/matrix"]
assert M.dtype == np.dtype(sys.argv[3]), M.dtype
assert M.chunks is not None and M.compression == "gzip"
M = M[...].astype(np.float64)
n = np.linalg.norm(X, axis=1)
valid = np.isfinite(X).all(1) & (n > 0)
Xn = X / np.where(valid, n, 1)[:, None]
C = Xn @ Xn.T
tol = 1e-5 if sys.argv[3] == "float32" else 1e-3
both = valid[:, None] & valid[None, :]
assert np.allclose(M[both], C[both], atol=tol), np.abs(M[both] - C[both]).max()
assert np.isnan(M[~both]).all()
assert np.array_equal(M, M.T, equal_nan=True)
)", shell_quote(in) + " " + shell_quote(out) + " " + dtype);
    }
}

// The disk fills while the matrix is written (a file size limit: writes past it fail with EFBIG),
// compressed (chunks deflated and written by the engine's threads) or not: one line naming the
// output, exit 4, no temporary file left, and the result of an earlier run still in place.
TEST(AnalyzeJob, AFullDiskWhileWritingTheMatrixLeavesOneLineAndTheEarlierResult) {
    TempDir dir;
    const std::string in = dir.file("in.h5"), out = dir.file("out.h5");
    write_random_input(in, 1500, 16, test::fresh_seed());  // a 9 MB matrix, far past the limit
    for (const char* gzip : {"0", "1"}) {
        SCOPED_TRACE(std::string("--matrix-gzip ") + gzip);
        {
            std::ofstream earlier(out);
            earlier << "an earlier result";
        }
        // SIGXFSZ ignored (inherited through exec), so a write past the limit fails instead.
        const auto r = test::run_command(
            "sh -c " + shell_quote("trap '' XFSZ; ulimit -f 2048; exec " +
                                   shell_quote(EMBGEOM_BINARY) + " " + analyze_args(in, out) +
                                   " --write-matrix --threads 2 --matrix-gzip " + gzip));
        EXPECT_EQ(r.exit_code, 4) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_EQ(r.err.rfind("embgeom: ", 0), 0u) << r.err;
        EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("HDF5"), std::string::npos) << r.err;
        EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"in.h5", "out.h5"}));
        std::ifstream kept(out);
        const std::string text((std::istreambuf_iterator<char>(kept)), {});
        EXPECT_EQ(text, "an earlier result");
    }
}

TEST(AnalyzeJob, PeakMemoryFollowsTheBudget) {
    // The same 39 MiB table three ways: per-token passes only with a tight budget (the fixed cost
    // of the process: code, OpenBLAS, HDF5 and, in CUDA builds, cuBLAS pages), the whole job with
    // that tight budget (the engine streams and may add only about the budget), and with a loose
    // budget (raw and normalised table held: about 80 MiB more). Peak RSS per child via wait4.
    // The table is large enough for the loose run to peak above the start-up transient of a
    // CUDA build (cuBLAS loading peaks ~240 MiB there before settling lower).
    TempDir dir;
    const std::string big = dir.file("big.h5");
    ASSERT_EQ(run_embgeom("synth --rows 40000 --dim 256 --output " + shell_quote(big)).exit_code, 0);
    const auto r = run_python(R"py(
import os, subprocess, sys
binary, big, out = sys.argv[1:4]
def peak_kib(args):
    p = subprocess.Popen([binary, "analyze", "--input", big, "--dataset", "/embeddings", "--output", out,
                          "--backend", "cpu"] + args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    assert status == 0
    return usage.ru_maxrss
print(peak_kib(["--memory-budget", "8M", "--no-all-pairs"]), peak_kib(["--memory-budget", "8M"]),
      peak_kib(["--memory-budget", "4G"]))
)py", shell_quote(test::embgeom_binary()) + " " + shell_quote(big) + " " + shell_quote(dir.file("o.h5")));
    std::istringstream in(r.out);
    long fixed = 0, tight = 0, loose = 0;
    in >> fixed >> tight >> loose;
    ASSERT_GT(fixed, 0) << r.out;
    EXPECT_LE(tight, fixed + 16 * 1024) << "tight budget " << tight << " KiB vs fixed cost " << fixed;
    EXPECT_GE(loose, tight + 25 * 1024) << "loose budget " << loose << " KiB vs tight " << tight;
}

TEST(AnalyzeJob, OutputIsAtomicAndEarlierResultSurvivesFailure) {
    TempDir dir;
    const std::string in = dir.file("in.h5"), out = dir.file("out.h5");
    write_random_input(in, 50, 4, 1);
    test::write_text_file(out, "an earlier result");
    const auto r = run_embgeom(analyze_args(in, out) + " --topk 60");  // topk >= V fails
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(test::read_text_file(out), "an earlier result");
    EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"in.h5", "out.h5"}));
    ASSERT_EQ(run_embgeom(analyze_args(in, out) + " --topk 5").exit_code, 0);
    EXPECT_NE(test::read_text_file(out), "an earlier result");
    EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"in.h5", "out.h5"}));
}

struct BadInputCase {
    const char* name;
    const char* setup_python;  ///< writes argv[1] (the input file); may be empty
    const char* args;          ///< {in} and {out} are replaced
    int exit_code;
    const char* message_part;  ///< must appear in the one-line message; {in} replaced
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
    return s;
}

const char* kGoodTable = R"(
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["emb"] = np.random.default_rng(0).normal(size=(20, 4)).astype("f4")
    f["vocab"] = np.array(["a"] * 19, dtype=h5py.string_dtype())
    f["bias"] = np.zeros(3)
    f["r1"] = np.zeros(5, dtype="f4")
    f["r3"] = np.zeros((2, 2, 2), dtype="f4")
    f["ints"] = np.zeros((4, 4), dtype="i4")
    f["zero_rows"] = np.zeros((0, 4), dtype="f4")
    f["zero_cols"] = np.zeros((4, 0), dtype="f4")
    f["nan_all"] = np.full((4, 4), np.nan, dtype="f4")
)";

TEST(AnalyzeJob, BadInputGivesOneLineErrorCodeAndNoOutput) {
    const BadInputCase cases[] = {
        {"missing file", "", "--input {in}.nope --dataset emb", 3, "{in}.nope"},
        {"not HDF5", "open(__import__('sys').argv[1], 'w').write('hello')", "--input {in} --dataset emb", 3, "{in}"},
        {"truncated", "import sys, h5py, numpy as np, os\nwith h5py.File(sys.argv[1], 'w') as f: f['emb'] = np.ones((4000, 8), 'f4')\nos.truncate(sys.argv[1], os.path.getsize(sys.argv[1]) // 2)", "--input {in} --dataset emb", 3, "{in}"},
        {"missing dataset", kGoodTable, "--input {in} --dataset nothere", 3, "nothere"},
        {"rank 1", kGoodTable, "--input {in} --dataset r1", 3, "r1"},
        {"rank 3", kGoodTable, "--input {in} --dataset r3", 3, "r3"},
        {"integer dataset", kGoodTable, "--input {in} --dataset ints", 3, "ints"},
        {"zero rows", kGoodTable, "--input {in} --dataset zero_rows", 3, "zero_rows"},
        {"zero columns", kGoodTable, "--input {in} --dataset zero_cols", 3, "zero_cols"},
        {"all rows NaN", kGoodTable, "--input {in} --dataset nan_all --topk 1", 3, "nan_all"},
        {"vocab length", kGoodTable, "--input {in} --dataset emb --vocab vocab", 3, "vocab"},
        {"missing vocab", kGoodTable, "--input {in} --dataset emb --vocab nov", 3, "nov"},
        {"vocab file missing", kGoodTable, "--input {in} --dataset emb --vocab-file {in}.txt", 3, "{in}.txt"},
        {"bias length", kGoodTable, "--input {in} --dataset emb --bias-dataset bias", 3, "bias"},
        {"topk >= V", kGoodTable, "--input {in} --dataset emb --topk 20", 2, "--topk"},
        {"matrix too big", kGoodTable, "--input {in} --dataset emb --write-matrix --max-matrix-bytes 1K", 2, "--max-matrix-bytes"},
        {"unwritable folder", kGoodTable, "--input {in} --dataset emb --output /nonexistent-dir/o.h5", 4, "/nonexistent-dir"},
    };
    for (const BadInputCase& c : cases) {
        SCOPED_TRACE(c.name);
        TempDir dir;
        const std::string in = dir.file("in.h5"), out = dir.file("out.h5");
        if (*c.setup_python) run_python(c.setup_python, shell_quote(in));
        std::string args = replace_all(c.args, "{in}", shell_quote(in));
        if (args.find("--output") == std::string::npos) args += " --output " + shell_quote(out);
        const auto r = run_embgeom("analyze --backend cpu " + args);
        EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_NE(r.err.find(replace_all(c.message_part, "{in}", in)), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("HDF5-DIAG"), std::string::npos) << r.err;
        EXPECT_FALSE(file_exists(out));
        for (const std::string& f : listing(dir.path()))
            EXPECT_TRUE(f == "in.h5") << "left behind: " << f;
    }
}

// The result file takes its path when the job ends: pointed at the input table (by its name, a
// symbolic link or another spelling) or at the --vocab-file, it would replace them. Refused.
TEST(AnalyzeJob, AnOutputThatIsTheInputOrTheVocabFileIsRefusedAndBothStay) {
    TempDir dir;
    const std::string in = dir.file("in.h5"), words = dir.file("words.txt");
    write_random_input(in, 40, 4, test::fresh_seed());
    {
        std::ofstream w(words);
        for (int i = 0; i < 40; ++i) w << "word" << i << "\n";
    }
    ASSERT_EQ(::symlink(in.c_str(), dir.file("link.h5").c_str()), 0);
    const auto contents = [](const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(f)), {});
    };
    const std::string table = contents(in), vocab = contents(words);
    const std::string base = "analyze --backend cpu --input " + shell_quote(in) + " --dataset emb";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {base + " --output " + shell_quote(in), "is the input file"},
        {base + " --output " + shell_quote(dir.file("link.h5")), "is the input file"},
        {base + " --output " + shell_quote(dir.path() + "/./in.h5"), "is the input file"},
        {base + " --vocab-file " + shell_quote(words) + " --output " + shell_quote(words),
         "is the --vocab-file"},
    };
    for (const auto& [args, says] : cases) {
        SCOPED_TRACE(args);
        const auto r = run_embgeom(args);
        EXPECT_EQ(r.exit_code, 2) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
        EXPECT_TRUE(contents(in) == table);
        EXPECT_TRUE(contents(words) == vocab);
    }
    EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"in.h5", "link.h5", "words.txt"}));
}

// --output /dev/null runs the whole job and keeps nothing: the device stays a device (a result
// renamed onto it, as root, replaced it with a file), and the matrix is not held in memory.
TEST(AnalyzeJob, OutputToDevNullRunsTheJobAndKeepsNothing) {
    TempDir dir;
    const std::string in = dir.file("in.h5");
    write_random_input(in, 300, 8, test::fresh_seed());
    const auto r = run_embgeom("analyze --backend cpu --input " + shell_quote(in) +
                               " --dataset emb --output /dev/null --write-matrix");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("results dropped (--output /dev/null)"), std::string::npos) << r.out;
    struct stat st;
    ASSERT_EQ(::lstat("/dev/null", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"in.h5"}));
}

// The neighbour lists (V x K x 12 bytes) are held whatever the plan: more than the machine (or
// the job's memory limit) holds is refused before any work, in one line naming --topk; more than
// --memory-budget runs and says so.
TEST(AnalyzeJob, NeighbourListsPastTheMemoryAreRefusedAndPastTheBudgetNoted) {
    TempDir dir;
    const std::string in = dir.file("in.h5");
    const double memory = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
    const long rows = static_cast<long>(std::sqrt(memory / 12.0) * 1.2) + 2;  // V (V-1) 12 > it
    run_python(
        "import sys, h5py, numpy as np\n"
        "h5py.File(sys.argv[1], 'w')['emb'] = np.ones((int(sys.argv[2]), 1), 'f4')",
        shell_quote(in) + " " + std::to_string(rows));
    const auto r = run_embgeom("analyze --backend cpu --input " + shell_quote(in) +
                               " --dataset emb --output " + shell_quote(dir.file("o.h5")) +
                               " --topk " + std::to_string(rows - 1));
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("embgeom: error: --topk " + std::to_string(rows - 1) +
                              ": the neighbour lists of " + std::to_string(rows) + " tokens take",
                          0),
              0u)
        << r.err;
    EXPECT_NE(r.err.find("more than the memory this job may use"), std::string::npos) << r.err;

    const std::string small = dir.file("small.h5");
    write_random_input(small, 300, 4, test::fresh_seed());
    const auto noted =
        run_embgeom(analyze_args(small, dir.file("n.h5")) + " --topk 200 --memory-budget 256K");
    ASSERT_EQ(noted.exit_code, 0) << noted.err;
    EXPECT_NE(noted.out.find("embgeom: note: --topk 200: the neighbour lists of 300 tokens take "
                             "703.12 KiB (tokens x K x 12 bytes), more than --memory-budget "
                             "256.00 KiB"),
              std::string::npos)
        << noted.out;
    EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"in.h5", "n.h5", "small.h5"}));
}

TEST(AnalyzeJob, DemoFindsEveryPlantedUndertrainedToken) {
    TempDir dir;
    const auto r = run_embgeom("demo --rows 3000 --dim 48 --dir " + shell_quote(dir.path()));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("8 of 8 planted under-trained tokens"), std::string::npos) << r.out;
    run_python(R"(
import sys, h5py, numpy as np
d = sys.argv[1]
truth = h5py.File(d + "/demo_table.h5")["truth/undertrained"][...]
top = h5py.File(d + "/demo_results.h5")["outliers/closest_to_centroid"]["token_id"][: len(truth)]
assert sorted(top) == sorted(truth), (top, truth)
dups = h5py.File(d + "/demo_table.h5")["truth/duplicate_pairs"][...]
found = h5py.File(d + "/demo_results.h5")["outliers/near_duplicates"][...]
got = set(zip(found["token_id_a"], found["token_id_b"]))
assert all((a, b) in got for a, b in dups), "planted duplicate pair missing"
)", shell_quote(dir.path()));
}

TEST(AnalyzeJob, GeometryStagesMatchNumpyAndFindPlantedTokens) {
    TempDir dir;
    const std::string in = dir.file("t.h5"), out = dir.file("g.h5");
    ASSERT_EQ(run_embgeom("synth --rows 1500 --dim 24 --seed " + std::to_string(test::fresh_seed() % 100000) +
                          " --output " + shell_quote(in)).exit_code, 0);
    const auto r = run_embgeom("analyze --input " + shell_quote(in) + " --dataset /embeddings --vocab /vocab "
                               "--bias-dataset /bias --output " + shell_quote(out) + " --backend cpu --principal "
                               "--remove-top 2 --undertrained --reference-regex '^<\\|unused_' --simplex 5 "
                               "--simplex-directions 500");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run_python_file("check_geometry.py", shell_quote(in) + " " + shell_quote(out) + " 2 5");
    // The stored config is a working --config: re-running from it gives the same datasets.
    const std::string cfg = dir.file("again.toml"), again = dir.file("again.h5");
    run_python("import sys, h5py\nopen(sys.argv[2], 'w').write(h5py.File(sys.argv[1]).attrs['config'])",
               shell_quote(out) + " " + shell_quote(cfg));
    ASSERT_EQ(run_embgeom("analyze --config " + shell_quote(cfg) + " --output " + shell_quote(again)).exit_code, 0);
    run_python_file("compare_outputs.py", shell_quote(out) + " " + shell_quote(again));
}

TEST(AnalyzeJob, NullModelsMatchTheoryOnGaussianTablesAndOffsetsMoveTheMeanCosine) {
    // A Gaussian table N(b, s^2 I): raw cosines average ~ |b|^2 / (d s^2 + |b|^2); centring
    // (removing ~b) restores the null; the isotropic null of the centred spread and the matched
    // null (same offset, same spread) bracket the real figures.
    TempDir dir;
    const std::string in = dir.file("g.h5"), out = dir.file("o.h5");
    run_python(R"py(
import sys, h5py, numpy as np
rng = np.random.default_rng(int(sys.argv[2]))
V, d, s = 1200, 32, 1.5
b = rng.normal(size=d)
b *= 4.0 / np.linalg.norm(b)
with h5py.File(sys.argv[1], "w") as f:
    f["emb"] = (b + s * rng.normal(size=(V, d))).astype("f4")
)py", shell_quote(in) + " " + std::to_string(test::fresh_seed() % 1000000));
    const auto r = run_embgeom("analyze --input " + shell_quote(in) + " --dataset emb --output " +
                               shell_quote(out) + " --backend cpu --center --principal --null isotropic,matched --seed 3");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("departure from the null models"), std::string::npos);
    run_python(R"py(
import sys, h5py, numpy as np
o = h5py.File(sys.argv[1])
fig = list(o["stats/departure/figure"].asstr()[...])
val = dict(zip(fig, o["stats/departure/value"][...]))
iso = dict(zip(fig, o["stats/departure/null_isotropic"][...]))
mat = dict(zip(fig, o["stats/departure/null_matched"][...]))
ana = dict(zip(fig, o["stats/departure/analytic_isotropic"][...]))
d, s, b2 = 32, 1.5, 16.0
expect = b2 / (d * s * s + b2)
assert abs(val["mean pairwise cosine"] - expect) < 0.05, (val["mean pairwise cosine"], expect)
assert abs(val["mean pairwise cosine (centred)"]) < 0.01, val["mean pairwise cosine (centred)"]
assert abs(iso["mean pairwise cosine"]) < 0.01, iso["mean pairwise cosine"]
assert abs(mat["mean pairwise cosine"] - val["mean pairwise cosine"]) < 0.03, mat["mean pairwise cosine"]
assert abs(iso["std of pairwise cosine"] - ana["std of pairwise cosine"]) < 0.01 * 1 + 0.05 * ana["std of pairwise cosine"]
assert abs(iso["norm relative width (std/mean)"] / ana["norm relative width (std/mean)"] - 1) < 0.1
assert iso["IsoScore"] > 0.9 and mat["IsoScore"] > 0.9 and val["IsoScore"] > 0.9, (iso["IsoScore"], mat["IsoScore"], val["IsoScore"])
assert iso["eigenvalues above Marchenko-Pastur edge"] == 0
assert abs(mat["|centroid| / mean norm"] / val["|centroid| / mean norm"] - 1) < 0.05
for model in ("isotropic", "matched"):
    g = o["null/" + model]
    assert g["norms"].shape == (1200,) and "neighbors" in g and "stats" in g
)py", shell_quote(out));
}

TEST(AnalyzeJob, GeometryFlagErrorsAreUsageErrors) {
    TempDir dir;
    const std::string in = dir.file("t.h5");
    ASSERT_EQ(run_embgeom("synth --rows 100 --dim 8 --output " + shell_quote(in)).exit_code, 0);
    const std::string base = "analyze --input " + shell_quote(in) + " --dataset /embeddings --output " +
                             shell_quote(dir.file("o.h5")) + " ";
    for (const char* args : {"--simplex 2", "--simplex 200", "--simplex 4 --simplex-plane 1,2",
                             "--reference-ids 5", "--undertrained --reference-range 5:500",
                             "--undertrained --reference-range x", "--undertrained --reference-regex 'q'",
                             "--remove-top -1", "--candidate-quantile 1.5", "--null gaussian"}) {
        const auto r = run_embgeom(base + args);
        EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
        EXPECT_FALSE(file_exists(dir.file("o.h5"))) << args;
    }
}

TEST(AnalyzeJob, EveryExampleConfigRuns) {
    TempDir dir;
    const std::string in = dir.file("table.h5");
    ASSERT_EQ(run_embgeom("synth --rows 400 --dim 16 --seed 3 --output " + shell_quote(in)).exit_code, 0);
    const std::string configs = test::source_dir() + "/configs";
    std::vector<std::string> names;
    for (const std::string& f : listing(configs))
        if (f.size() > 5 && f.substr(f.size() - 5) == ".toml") names.push_back(f);
    ASSERT_GE(names.size(), 5u);
    for (const std::string& cfg : names) {
        SCOPED_TRACE(cfg);
        const std::string out = dir.file(cfg + ".h5");
        const auto r = run_embgeom("analyze --config " + shell_quote(configs + "/" + cfg) + " --input " + shell_quote(in) +
                                   " --output " + shell_quote(out) + " --backend cpu");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(file_exists(out));
    }
}

// Fails unless every output file after the first holds the same datasets as the first, bit for bit
// (numbers by their bytes, NaN included; strings by value).
const char* kSameOutputs = R"py(
import sys, h5py, numpy as np
def data(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) else None)
    return out
def same(a, b):
    # Numbers by their bytes (NaN too); strings (variable length) by value.
    if a.dtype.names:
        return all(same(a[f], b[f]) for f in a.dtype.names)
    if a.dtype.kind in "OSU":
        return a.tolist() == b.tolist()
    return a.shape == b.shape and a.tobytes() == b.tobytes()
ref = data(sys.argv[1])
for other in sys.argv[2:]:
    got = data(other)
    assert got.keys() == ref.keys(), other
    for n in ref:
        assert same(ref[n], got[n]), f"{other}: {n} differs"
)py";

// A float32 contiguous table is mapped from its file instead of read: the same bits either way.
TEST(AnalyzeJob, MappedAndReadTablesGiveTheSameBits) {
    TempDir dir;
    const std::string in = dir.file("t.h5");
    ASSERT_EQ(run_embgeom("synth --rows 600 --dim 40 --seed 4 --output " + shell_quote(in)).exit_code, 0);
    std::vector<std::string> outs;
    for (const char* no_map : {"0", "1"}) {
        outs.push_back(dir.file(std::string("out") + no_map + ".h5"));
        const auto r = test::run_command(
            "EMBGEOM_NO_MMAP=" + std::string(no_map) + " " + shell_quote(test::embgeom_binary()) +
            " analyze --input " + shell_quote(in) + " --dataset /embeddings --center --output " +
            shell_quote(outs.back()));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find(no_map[0] == '0' ? "table mapped from the file" : "time: read "),
                  std::string::npos)
            << r.out;
    }
    run_python(kSameOutputs, shell_quote(outs[0]) + " " + shell_quote(outs[1]));
}

// The CPU's tile product runs AVX-512, AVX2 or a portable loop depending on the machine: one fma
// chain per pair in every case, so the whole output is the same bits on every CPU.
TEST(AnalyzeJob, CpuOutputIsTheSameBitsWhicheverTileKernelRuns) {
    TempDir dir;
    const std::string in = dir.file("t.h5");
    ASSERT_EQ(run_embgeom("synth --rows 700 --dim 45 --seed 9 --output " + shell_quote(in)).exit_code, 0);
    std::vector<std::string> outs;
    for (const char* kernel : {"portable", "avx2", "best"}) {
        outs.push_back(dir.file(std::string(kernel) + ".h5"));
        const auto r = test::run_command(
            "EMBGEOM_TILE_KERNEL=" + std::string(kernel) + " " + shell_quote(test::embgeom_binary()) +
            " analyze --backend cpu --input " + shell_quote(in) + " --dataset /embeddings --center --output " +
            shell_quote(outs.back()));
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    run_python(kSameOutputs, shell_quote(outs[2]) + " " + shell_quote(outs[0]) + " " + shell_quote(outs[1]));
}

// cuBLAS (with cuBLASLt: 540 MB of library, 150 MiB resident once relocated) is opened only when
// the CUDA backend runs: a CPU run of a CUDA build must not load it, nor cuSOLVER. The dynamic
// loader's own log (LD_DEBUG=files) lists every library a process opens, dlopen included; HDF5
// appearing in it shows the log works.
TEST(AnalyzeJob, CpuRunLoadsNoCudaMathLibrary) {
    TempDir dir;
    const std::string in = dir.file("t.h5");
    ASSERT_EQ(run_embgeom("synth --rows 300 --dim 20 --seed 5 --output " + shell_quote(in)).exit_code, 0);
    const auto r = test::run_command(
        "LD_DEBUG=files " + shell_quote(test::embgeom_binary()) +
        " analyze --backend cpu --principal --input " + shell_quote(in) +
        " --dataset /embeddings --output " + shell_quote(dir.file("out.h5")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("file=libhdf5"), std::string::npos) << r.err.substr(0, 2000);
    EXPECT_EQ(r.err.find("libcublas"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("libcusolver"), std::string::npos) << r.err;
}

// tests/python/compare_backends.py is what scripts/gpu-validate judges the CUDA backend's CLI
// output with: it must pass two runs that differ only in rounding-free ways (thread counts give
// bit-identical files) and fail a file with a perturbed norm or a neighbour that is no near-tie.
TEST(AnalyzeJob, BackendComparisonScriptAcceptsEqualRunsAndCatchesRealDifferences) {
    TempDir dir;
    const std::string in = dir.file("t.h5"), a = dir.file("a.h5"), b = dir.file("b.h5");
    // Each step's stderr is printed on failure: this test once failed within 0.3 s under a full
    // `ctest -j2` and never again (2026-12-07), so the next failure should say which step.
    const auto ok = [](const test::CommandResult& r) {
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return r.exit_code == 0;
    };
    ASSERT_TRUE(ok(run_embgeom("synth --rows 3000 --dim 32 --seed 5 --output " + shell_quote(in))));
    const std::string base = "analyze --input " + shell_quote(in) + " --dataset /embeddings --center --output ";
    ASSERT_TRUE(ok(run_embgeom(base + shell_quote(a) + " --threads 1")));
    ASSERT_TRUE(ok(run_embgeom(base + shell_quote(b) + " --threads 2")));
    auto r = run_python_file("compare_backends.py", shell_quote(a) + " " + shell_quote(b));
    EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out;

    // Figures from the neighbour lists may move by near-ties (1e-3 relative); others may not.
    const char* nudge_headline = R"py(
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    names = [n.decode() for n in f["stats/headline/figure"][...]]
    v = f["stats/headline/value"][...]
    v[names.index(sys.argv[2])] *= 1 + float(sys.argv[3])
    f["stats/headline/value"][...] = v
)py";
    run_python(nudge_headline, shell_quote(b) + " 'TwoNN intrinsic dimension' 5e-4");
    r = run_python_file("compare_backends.py", shell_quote(a) + " " + shell_quote(b));
    EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out;
    run_python(nudge_headline, shell_quote(b) + " 'mean pairwise cosine' 5e-4");
    r = test::run_command(shell_quote(test::python_binary()) + " " +
                          shell_quote(test::source_dir() + "/tests/python/compare_backends.py") + " " +
                          shell_quote(a) + " " + shell_quote(b));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("DIFFERS: stats/headline/value: mean pairwise cosine"), std::string::npos) << r.out;

    run_python(R"py(
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["norms"][7] = f["norms"][7] * 1.001
    idx = f["neighbors/indices"][...]
    idx[11, 0] = idx[11, 4]
    f["neighbors/indices"][...] = idx
)py", shell_quote(b));
    r = test::run_command(shell_quote(test::python_binary()) + " " +
                          shell_quote(test::source_dir() + "/tests/python/compare_backends.py") + " " +
                          shell_quote(a) + " " + shell_quote(b));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("DIFFERS: norms"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("DIFFERS: neighbors/indices"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace embgeom
