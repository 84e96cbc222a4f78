// `embgeom analyze --backend cuda` end to end on the emulated CUDA backend (embgeom_emulated: the
// whole program linked to it), against `--backend cpu` of the real binary, compared by
// tests/python/compare_backends.py (tolerances, not bits: the GEMMs round differently). What it
// checks that the backend-level parity tests cannot: the job's own use of the backend (the table
// held on the device for every pass and released before the backend, every geometry stage, the
// null models, the time line and the root attributes) on CUDA's code path.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace {

using namespace embgeom;
using test::shell_quote;

std::string emulated_binary() { return EMBGEOM_EMULATED_BINARY; }

/// The root attribute `name` of an output file, as python prints it.
std::string root_attribute(const std::string& file, const std::string& name) {
    const test::CommandResult r =
        test::run_python("import h5py, sys\nprint(h5py.File(sys.argv[1], 'r').attrs[sys.argv[2]])",
                         shell_quote(file) + " " + shell_quote(name));
    return r.out.substr(0, r.out.find('\n'));
}

/// A trained-like rows x dim table at path, written by the real binary from a fresh seed; the
/// exit code.
int synth_trained(const std::string& path, std::int64_t rows, std::int64_t dim) {
    return test::run_embgeom("synth --kind trained --rows " + std::to_string(rows) + " --dim " +
                             std::to_string(dim) + " --seed " +
                             std::to_string(test::fresh_seed() % 1000000) + " -o " +
                             shell_quote(path))
        .exit_code;
}

struct CliCase {
    const char* name;
    const char* precision;
    bool fast_cosines;  ///< the CUDA run may take a fast product: compare with --fast-cosines
};

void PrintTo(const CliCase& c, std::ostream* os) { *os << c.name; }

class EmulatedCli : public ::testing::TestWithParam<CliCase> {};

TEST_P(EmulatedCli, AnalyzeOnCudaMatchesTheCpuWithEveryStage) {
    const CliCase& c = GetParam();
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(synth_trained(table, 2500, 48), 0);
    const std::string stages =
        " -d /embeddings --vocab /vocab --center --principal --remove-top 2 --undertrained"
        " --simplex 4 --simplex-directions 400 --csls --null isotropic --precision " +
        std::string(c.precision);
    const test::CommandResult cuda =
        test::run_command(shell_quote(emulated_binary()) + " analyze -i " + shell_quote(table) +
                          " -o " + shell_quote(dir.file("cuda.h5")) + " --backend cuda" + stages);
    ASSERT_EQ(cuda.exit_code, 0) << cuda.err;
    const test::CommandResult cpu =
        test::run_embgeom("analyze -i " + shell_quote(table) + " -o " +
                          shell_quote(dir.file("cpu.h5")) + " --backend cpu" + stages);
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;

    EXPECT_NE(cuda.out.find("backend: cuda ("), std::string::npos) << cuda.out;
    EXPECT_NE(cuda.out.find("table to the device"), std::string::npos) << cuda.out;
    EXPECT_EQ(cpu.out.find("table to the device"), std::string::npos) << cpu.out;
    EXPECT_EQ(root_attribute(dir.file("cuda.h5"), "table_on_device"), "1");
    EXPECT_EQ(root_attribute(dir.file("cpu.h5"), "table_on_device"), "0");
    EXPECT_EQ(root_attribute(dir.file("cuda.h5"), "table_on_device_dtype"), "float32");
    EXPECT_EQ(root_attribute(dir.file("cpu.h5"), "table_on_device_dtype"), "none");

    const test::CommandResult cmp = test::run_python_file(
        "compare_backends.py", std::string(c.fast_cosines ? "--fast-cosines " : "") +
                                   shell_quote(dir.file("cuda.h5")) + " " +
                                   shell_quote(dir.file("cpu.h5")));
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    EXPECT_NE(cmp.out.find("ok"), std::string::npos) << cmp.out;
}

// Holding the table on the device changes where the passes read it, nothing they compute: with
// EMBGEOM_NO_DEVICE_TABLE=1 every dataset has the same bits (compare_outputs.py).
TEST(EmulatedCliHold, TheFileIsTheSameWithoutTheHeldTable) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(synth_trained(table, 1800, 40), 0);
    const std::string args = " analyze -i " + shell_quote(table) +
                             " -d /embeddings --vocab /vocab --backend cuda --precision auto"
                             " --center --csls --simplex 3 --simplex-directions 300";
    const test::CommandResult held = test::run_command(shell_quote(emulated_binary()) + args +
                                                       " -o " + shell_quote(dir.file("held.h5")));
    ASSERT_EQ(held.exit_code, 0) << held.err;
    const test::CommandResult copied =
        test::run_command("EMBGEOM_NO_DEVICE_TABLE=1 " + shell_quote(emulated_binary()) + args +
                          " -o " + shell_quote(dir.file("copied.h5")));
    ASSERT_EQ(copied.exit_code, 0) << copied.err;
    EXPECT_EQ(root_attribute(dir.file("held.h5"), "table_on_device"), "1");
    EXPECT_EQ(root_attribute(dir.file("copied.h5"), "table_on_device"), "0");
    const test::CommandResult cmp =
        test::run_python_file("compare_outputs.py", shell_quote(dir.file("held.h5")) + " " +
                                                        shell_quote(dir.file("copied.h5")));
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

// A table stored in bfloat16 is held in bfloat16 (half the device memory), and every pass still
// reads its float32 bits: the file is the one the passes write copying the table for each.
TEST(EmulatedCliHold, ABfloat16TableIsHeldInBfloat16WithTheSameFile) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(test::run_embgeom("synth --rows 700 --dim 24 --dtype bfloat16 --seed " +
                                std::to_string(test::fresh_seed() % 1000000) + " -o " +
                                shell_quote(table))
                  .exit_code,
              0);
    const std::string args = " analyze -i " + shell_quote(table) +
                             " -d /embeddings --backend cuda --precision auto --center --csls";
    const test::CommandResult held = test::run_command(shell_quote(emulated_binary()) + args +
                                                       " -o " + shell_quote(dir.file("held.h5")));
    ASSERT_EQ(held.exit_code, 0) << held.err;
    EXPECT_NE(held.out.find("s (as bfloat16)"), std::string::npos) << held.out;
    EXPECT_EQ(root_attribute(dir.file("held.h5"), "table_on_device_dtype"), "bfloat16");
    EXPECT_EQ(root_attribute(dir.file("held.h5"), "precision"), "bf16-raw");
    const test::CommandResult copied =
        test::run_command("EMBGEOM_NO_DEVICE_TABLE=1 " + shell_quote(emulated_binary()) + args +
                          " -o " + shell_quote(dir.file("copied.h5")));
    ASSERT_EQ(copied.exit_code, 0) << copied.err;
    EXPECT_EQ(root_attribute(dir.file("copied.h5"), "table_on_device_dtype"), "none");
    const test::CommandResult cmp =
        test::run_python_file("compare_outputs.py", shell_quote(dir.file("held.h5")) + " " +
                                                        shell_quote(dir.file("copied.h5")));
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

// Two emulated devices sharing the tile pairs (the copy of the table held on the first) write
// the file one device writes, bit for bit (compare_outputs.py: every dataset): exact, and auto,
// which runs tf32 on these centred float32 rows, its merged candidates re-scored on device 0;
// exact with the compressed matrix as well.
TEST(EmulatedCliDevices, TwoDevicesWriteTheOneDeviceFile) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(synth_trained(table, 2000, 40), 0);
    for (const std::string precision : {"exact", "auto"}) {
        SCOPED_TRACE(precision);
        const std::string args =
            " analyze -i " + shell_quote(table) +
            " -d /embeddings --vocab /vocab --backend cuda --precision " + precision +
            " --center --principal --csls --simplex 3 --simplex-directions 300" +
            // Both engines' tiles into one compressed matrix (each chunk deflated once).
            (precision == "exact" ? " --write-matrix --matrix-gzip 1" : "");
        const std::string run = shell_quote(emulated_binary()) + args;
        const std::string one_file = dir.file(precision + "1.h5");
        const std::string two_file = dir.file(precision + "2.h5");
        const test::CommandResult one = test::run_command(run + " -o " + shell_quote(one_file));
        ASSERT_EQ(one.exit_code, 0) << one.err;
        const test::CommandResult two =
            test::run_command(run + " --devices 0,1 -o " + shell_quote(two_file));
        ASSERT_EQ(two.exit_code, 0) << two.err;
        EXPECT_NE(two.out.find("all-pairs engines on devices 0,1"), std::string::npos) << two.out;
        if (precision == "auto") {
            EXPECT_EQ(root_attribute(two_file, "precision"), "tf32");
        }
        const test::CommandResult cmp = test::run_python_file(
            "compare_outputs.py", shell_quote(one_file) + " " + shell_quote(two_file));
        EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    }
}

// --devices all takes the GPUs of the model most of them are, says which it leaves out, and
// records the ids that ran in the output's config (the word "all" where no GPU ran).
TEST(EmulatedCliDevices, DevicesAllTakesTheGpusOfOneModelAndRecordsThem) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(synth_trained(table, 400, 16), 0);
    const auto config_of = [](const std::string& file) {
        return test::run_python("import h5py, sys\nprint(h5py.File(sys.argv[1], 'r').attrs['config'])",
                                shell_quote(file))
            .out;
    };
    struct Case {
        const char* env;
        const char* backend;
        const char* engines;    ///< in the backend line, "" where one engine runs
        const char* note;       ///< in the report, "" where none is due
        const char* recorded;   ///< the config's devices line
    };
    int n = 0;
    for (const Case& c :
         {Case{"", "auto", "all-pairs engines on devices 0,1", "", "devices = [0, 1]"},
          Case{"EMBGEOM_EMULATED_COMPUTE_CAPABILITY=9.0,8.0", "cuda", "",
               "--devices all leaves out device 1 (embgeom emulated device, compute capability "
               "8.0): another model than device 0 (embgeom emulated device)",
               "devices = [0]"},
          Case{"EMBGEOM_EMULATED_COMPUTE_CAPABILITY=7.5,9.0", "auto", "",
               "--devices all leaves out device 0 (embgeom emulated device, compute capability "
               "7.5): this build has no code for it",
               "devices = [1]"},
          Case{"EMBGEOM_EMULATED_NO_DEVICE=no-driver", "auto", "", "no NVIDIA driver is loaded",
               "devices = \"all\""},
          Case{"", "cpu", "", "", "devices = \"all\""}}) {
        SCOPED_TRACE(std::string(c.env) + " --backend " + c.backend);
        const std::string out = dir.file("o" + std::to_string(n++) + ".h5");
        const test::CommandResult r = test::run_command(
            std::string("env ") + c.env + " " + shell_quote(emulated_binary()) + " analyze -i " +
            shell_quote(table) + " -d /embeddings --devices all --backend " + c.backend + " -o " +
            shell_quote(out));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out.find(*c.engines ? c.engines : "all-pairs engines") != std::string::npos,
                  *c.engines != '\0')
            << r.out;
        EXPECT_EQ(r.out.find(*c.note ? c.note : "embgeom: note:") != std::string::npos,
                  *c.note != '\0')
            << r.out;
        EXPECT_NE(config_of(out).find(std::string("\n") + c.recorded + "\n"), std::string::npos)
            << config_of(out);
    }
}


// `embgeom devices` lists every GPU with whether it is ready and why not, what --devices all
// takes, and exits 4 (with one error line) where none is ready or none is listed.
TEST(EmulatedCliDevices, TheDevicesCommandSaysWhichGpusAreReady) {
    struct Case {
        const char* env;
        int exit_code;
        std::vector<std::string> lines;  ///< each must appear in stdout
        const char* error;               ///< the one stderr line's start, "" for none
    };
    const std::string header = "  id  device";
    for (const Case& c :
         {Case{"",
               0,
               {"embgeom devices: CUDA runtime 13.0, driver for CUDA 13.0, cuBLAS ",
                "this build runs on CUDA architectures ", header,
                "  0   embgeom emulated device         9.0         4.00 GiB / 4.00 GiB       yes\n",
                "  1   embgeom emulated device         9.0         4.00 GiB / 4.00 GiB       yes\n",
                "  --devices all runs on devices 0,1\n"},
               ""},
          Case{"EMBGEOM_EMULATED_COMPUTE_CAPABILITY=9.0,7.5",
               0,
               {"  1   embgeom emulated device         7.5         - / 4.00 GiB              no: "
                "this build has no code for it (rebuild with -DCMAKE_CUDA_ARCHITECTURES=75)\n",
                "  --devices all runs on device 0; it leaves out device 1 ("},
               ""},
          Case{"EMBGEOM_EMULATED_BUSY=1",
               4,
               {"  0   embgeom emulated device         9.0         - / 4.00 GiB              no: it "
                "does not start (CUDA error: ",
                "cudaErrorDevicesUnavailable"},
               "embgeom: error: none of the 2 CUDA devices can run embgeom (see the list above)"},
          Case{"EMBGEOM_EMULATED_NO_DEVICE=old-driver",
               4,
               {},
               "embgeom: error: no usable CUDA device: the NVIDIA driver supports CUDA 12.4, "
               "older than the CUDA 13.0 runtime"}}) {
        SCOPED_TRACE(c.env);
        const test::CommandResult r = test::run_command(std::string("env ") + c.env + " " +
                                                        shell_quote(emulated_binary()) + " devices");
        EXPECT_EQ(r.exit_code, c.exit_code) << r.out << r.err;
        for (const std::string& line : c.lines)
            EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
        if (*c.error) {
            EXPECT_EQ(r.err.rfind(c.error, 0), 0u) << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        } else {
            EXPECT_EQ(r.err, "");
        }
        if (c.lines.empty()) {
            EXPECT_EQ(r.out, "");
        }
    }
}

// A GPU that cannot be used, as `env` makes the emulated runtime answer: --backend auto runs on
// the CPU with a note holding every note_part; --backend cuda fails with exit code 4 and one line
// that starts with error_start and holds every error_part, and writes no file.
void expect_cpu_fallback_and_cuda_refusal(const std::string& env,
                                          const std::vector<std::string>& note_parts,
                                          const std::string& error_start,
                                          const std::vector<std::string>& error_parts) {
    SCOPED_TRACE(env);
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(synth_trained(table, 300, 16), 0);
    const std::string run = "env " + env + " " + shell_quote(emulated_binary()) + " analyze -i " +
                            shell_quote(table) + " -d /embeddings -o ";
    const test::CommandResult fallback = test::run_command(run + shell_quote(dir.file("auto.h5")));
    ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
    // The report (stdout) says why the CPU ran.
    EXPECT_NE(fallback.out.find("embgeom: note: "), std::string::npos) << fallback.out;
    for (const std::string& part : note_parts)
        EXPECT_NE(fallback.out.find(part), std::string::npos) << part << "\n" << fallback.out;
    EXPECT_NE(fallback.out.find("running on the CPU backend"), std::string::npos) << fallback.out;
    EXPECT_EQ(root_attribute(dir.file("auto.h5"), "backend").rfind("cpu (", 0), 0u);

    const test::CommandResult refused =
        test::run_command(run + shell_quote(dir.file("cuda.h5")) + " --backend cuda");
    EXPECT_EQ(refused.exit_code, 4) << refused.err;
    EXPECT_EQ(refused.err.rfind(error_start, 0), 0u) << refused.err;
    for (const std::string& part : error_parts)
        EXPECT_NE(refused.err.find(part), std::string::npos) << part << "\n" << refused.err;
    EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("cuda.h5")));
}

// A GPU this build has no code for (compute capability 7.5 under the default 80-real;90).
TEST(EmulatedCliDevices, AGpuWithoutCodeInTheBuildFallsBackOrFailsInOneLine) {
    expect_cpu_fallback_and_cuda_refusal("EMBGEOM_EMULATED_COMPUTE_CAPABILITY=7.5",
                                         {"compute capability 7.5"},
                                         "embgeom: error: --backend cuda: CUDA device 0 (", {});
}

// A GPU that is listed but does not start (held by another process in exclusive-process mode):
// the note and the error name the runtime's error.
TEST(EmulatedCliDevices, AGpuThatDoesNotStartFallsBackOrFailsInOneLine) {
    expect_cpu_fallback_and_cuda_refusal(
        "EMBGEOM_EMULATED_BUSY=1",
        {"embgeom: note: the CUDA backend could not start (",
         "cudaErrorDevicesUnavailable (CUDA-capable device(s) is/are busy",
         "): running on the CPU backend"},
        "embgeom: error: CUDA error: ", {"cudaErrorDevicesUnavailable"});
}

// A machine whose runtime lists no GPU says why, for each way that happens
// (core/cuda_absence.hpp), and no status of cudaGetDeviceCount stops auto.
TEST(EmulatedCliDevices, NoListedGpuSaysWhyInTheNoticeAndTheError) {
    struct Case {
        const char* env;
        const char* reason;
    };
    for (const Case& c :
         {Case{"EMBGEOM_EMULATED_NO_DEVICE=no-driver", "no NVIDIA driver is loaded"},
          Case{
              "EMBGEOM_EMULATED_NO_DEVICE=old-driver",
              "the NVIDIA driver supports CUDA 12.4, older than the CUDA 13.0 runtime this build "
              "uses: update the driver to 580 or later, or rebuild embgeom with a CUDA 12 toolkit"},
          Case{"EMBGEOM_EMULATED_NO_DEVICE=no-device CUDA_VISIBLE_DEVICES=",
               "CUDA_VISIBLE_DEVICES is set and empty"},
          Case{"EMBGEOM_EMULATED_NO_DEVICE=not-ready", "start nvidia-fabricmanager"}})
        expect_cpu_fallback_and_cuda_refusal(
            c.env, {"embgeom: note: no usable CUDA device: ", c.reason, "; running on the CPU backend"},
            "embgeom: error: --backend cuda: no usable CUDA device: ", {c.reason});
}

// The host's --memory-budget bounds host memory only: with no --device-memory-budget the GPU plan
// may use all the device has free (a 1 MiB host budget once made this run fail "not enough device
// memory" on a 4 GiB device). An explicit --device-memory-budget still bounds it: 2 MiB leaves
// only a streamed plan, which cannot re-score, so auto runs exact; 1 MiB fits no plan, and the
// one line says which budget to raise, and no file is written.
TEST(EmulatedCliBudget, TheHostBudgetLeavesTheGpuItsMemory) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(synth_trained(table, 1200, 32), 0);
    const std::string run = shell_quote(emulated_binary()) + " analyze -i " + shell_quote(table) +
                            " -d /embeddings --backend cuda --precision auto";
    const test::CommandResult host =
        test::run_command(run + " --memory-budget 1M -o " + shell_quote(dir.file("host.h5")));
    ASSERT_EQ(host.exit_code, 0) << host.err;
    EXPECT_EQ(root_attribute(dir.file("host.h5"), "precision"), "tf32");

    const test::CommandResult streamed =
        test::run_command(run + " --memory-budget 1M --device-memory-budget 2M -o " +
                          shell_quote(dir.file("streamed.h5")));
    ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
    EXPECT_EQ(root_attribute(dir.file("streamed.h5"), "precision"), "exact");

    const test::CommandResult refused = test::run_command(run + " --device-memory-budget 1M -o " +
                                                          shell_quote(dir.file("refused.h5")));
    EXPECT_EQ(refused.exit_code, 4) << refused.err;
    EXPECT_NE(refused.err.find("device memory budget 1.0 MiB"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("raise --device-memory-budget"), std::string::npos) << refused.err;
    EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("refused.h5")));
}

INSTANTIATE_TEST_SUITE_P(Precisions, EmulatedCli,
                         ::testing::Values(CliCase{"exact", "exact", false},
                                           CliCase{"auto", "auto", true}),
                         [](const ::testing::TestParamInfo<CliCase>& info) {
                             return std::string(info.param.name);
                         });

}  // namespace
