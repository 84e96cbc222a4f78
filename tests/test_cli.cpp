// The command line as users meet it: options, config files, overrides, exit codes.
#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include "cli/cli.hpp"
#include "cpu/blas_runtime.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "pipeline/analyze_job.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::run_embgeom;
using test::shell_quote;
using test::TempDir;
using test::write_text_file;

using test::parse;

/// A config with the three required keys, for the resolved-config round trips.
AnalyzeConfig job_config() {
    AnalyzeConfig c;
    c.input = "in.h5";
    c.dataset = "/e";
    c.output = "out.h5";
    return c;
}

TEST(Cli, AnalyzeDefaults) {
    const CliState st = parse({"analyze", "--input", "a.h5", "--dataset", "/e", "--output", "o.h5"});
    EXPECT_EQ(st.analyze.input, "a.h5");
    EXPECT_EQ(st.analyze.dataset, "/e");
    EXPECT_EQ(st.analyze.topk, 10);
    EXPECT_EQ(st.analyze.outliers, 100);
    EXPECT_EQ(st.analyze.hist_bins, 2000);
    EXPECT_DOUBLE_EQ(st.analyze.dup_threshold, 0.999);
    EXPECT_EQ(st.analyze.backend, BackendKind::kAuto);
    EXPECT_TRUE(st.analyze.all_pairs);
    EXPECT_FALSE(st.analyze.center);
    EXPECT_EQ(st.analyze.max_matrix_bytes, 64ull << 30);
}

TEST(Cli, EveryOptionParses) {
    const CliState st = parse({"analyze", "-i", "a.h5", "-d", "/e", "-o", "o.h5", "--vocab", "/v",
                               "--bias-dataset", "/b", "-k", "5", "--outliers", "7", "--backend",
                               "CPU", "--threads", "3", "--memory-budget", "1.5G", "--block-rows",
                               "128", "--no-all-pairs", "--hist-bins", "100", "--dup-threshold",
                               "0.9", "--max-dup-pairs", "12", "--center", "--write-matrix",
                               "--matrix-dtype", "float16", "--matrix-gzip", "4",
                               "--max-matrix-bytes", "2G", "--device-memory-budget", "40G"});
    const AnalyzeConfig& c = st.analyze;
    EXPECT_EQ(*c.vocab_dataset, "/v");
    EXPECT_EQ(*c.bias_dataset, "/b");
    EXPECT_EQ(c.topk, 5);
    EXPECT_EQ(c.outliers, 7);
    EXPECT_EQ(c.backend, BackendKind::kCpu);
    EXPECT_EQ(c.threads, 3);
    EXPECT_EQ(c.memory_budget, static_cast<std::uint64_t>(1.5 * (1ull << 30)));
    EXPECT_EQ(c.block_rows, 128);
    EXPECT_FALSE(c.all_pairs);
    EXPECT_EQ(c.hist_bins, 100);
    EXPECT_DOUBLE_EQ(c.dup_threshold, 0.9);
    EXPECT_EQ(c.max_dup_pairs, 12);
    EXPECT_TRUE(c.center);
    EXPECT_TRUE(c.write_matrix);
    EXPECT_EQ(c.matrix_dtype, MatrixDtype::kFloat16);
    EXPECT_EQ(c.matrix_gzip, 4);
    EXPECT_EQ(c.max_matrix_bytes, 2ull << 30);
    EXPECT_EQ(c.device_memory_budget, 40ull << 30);
}

TEST(Cli, ConfigFileKeysAndCommandLineOverride) {
    TempDir dir;
    const std::string cfg = dir.file("job.toml");
    write_text_file(cfg, "# a job\ninput = \"in file.h5\"\ndataset = \"/emb\"\noutput = \"o.h5\"\n"
                         "topk = 20\ncenter = true\nmemory_budget = \"512M\"\nall-pairs = false\n"
                         "backend = \"cpu\"\n");
    CliState st = parse({"analyze", "--config", cfg});
    EXPECT_EQ(st.analyze.input, "in file.h5");
    EXPECT_EQ(st.analyze.topk, 20);
    EXPECT_TRUE(st.analyze.center);
    EXPECT_FALSE(st.analyze.all_pairs);
    EXPECT_EQ(st.analyze.memory_budget, 512ull << 20);
    EXPECT_EQ(st.analyze.backend, BackendKind::kCpu);
    st = parse({"analyze", "--topk", "3", "--config=" + cfg, "--all-pairs", "--output", "x.h5"});
    EXPECT_EQ(st.analyze.topk, 3);
    EXPECT_TRUE(st.analyze.all_pairs);
    EXPECT_EQ(st.analyze.output, "x.h5");
    EXPECT_EQ(st.analyze.dataset, "/emb");
}

TEST(Cli, ConfigUnderAnalyzeSection) {
    TempDir dir;
    write_text_file(dir.file("s.toml"), "[analyze]\ntopk = 4\n");
    EXPECT_EQ(parse({"analyze", "--config", dir.file("s.toml")}).analyze.topk, 4);
}

TEST(Cli, UnknownConfigKeyIsNamed) {
    TempDir dir;
    write_text_file(dir.file("bad.toml"), "topk = 4\ntop_kk = 5\n");
    try {
        parse({"analyze", "--config", dir.file("bad.toml")});
        FAIL() << "expected a UsageError";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("top_kk"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("bad.toml"), std::string::npos) << e.what();
    }
    write_text_file(dir.file("sec.toml"), "[synth]\nrows = 5\n");
    EXPECT_THROW(parse({"analyze", "--config", dir.file("sec.toml")}), UsageError);
    EXPECT_THROW(parse({"analyze", "--config", dir.file("missing.toml")}), UsageError);
}

TEST(Cli, DeviceMemoryBudgetRoundTripsThroughTheResolvedConfig) {
    TempDir dir;
    AnalyzeConfig c = job_config();
    c.device_memory_budget = 3ull << 30;
    const std::string toml = config_to_toml(c);
    EXPECT_NE(toml.find("device-memory-budget = 3221225472"), std::string::npos) << toml;
    write_text_file(dir.file("c.toml"), toml);
    EXPECT_EQ(parse({"analyze", "--config", dir.file("c.toml")}).analyze.device_memory_budget,
              3ull << 30);
    c.device_memory_budget = 0;  // the default is left out, and stays the default
    EXPECT_EQ(config_to_toml(c).find("device-memory-budget"), std::string::npos);
}

TEST(Cli, BadValuesAreUsageErrors) {
    EXPECT_THROW(parse({"analyze", "--memory-budget", "lots"}), UsageError);
    EXPECT_THROW(parse({"analyze", "--max-matrix-bytes", "3Q"}), UsageError);
    EXPECT_THROW(parse({"analyze", "--device-memory-budget", "much"}), UsageError);
    EXPECT_THROW(parse({"analyze", "--backend", "tpu"}), CLI::ParseError);
    EXPECT_THROW(parse({"analyze", "--topk", "ten"}), CLI::ParseError);
    EXPECT_THROW(parse({"frobnicate"}), CLI::ParseError);
}

TEST(Cli, DevicesParseAsAListOfIds) {
    EXPECT_TRUE(parse({"analyze"}).analyze.devices.empty());
    EXPECT_EQ(parse({"analyze", "--devices", "0,1,3"}).analyze.devices, (std::vector<int>{0, 1, 3}));
    // Repeats are allowed on purpose: two engines on one GPU.
    EXPECT_EQ(parse({"analyze", "--devices", "0,0"}).analyze.devices, (std::vector<int>{0, 0}));
    EXPECT_EQ(parse({"analyze", "--devices", "2"}).analyze.devices, (std::vector<int>{2}));
    EXPECT_FALSE(parse({"analyze", "--devices", "0,1"}).analyze.all_devices);
}

TEST(Cli, DevicesAllStandsAloneInAnyCaseAndInConfigFiles) {
    for (const char* all : {"all", "ALL", "All"}) {
        const AnalyzeConfig c = parse({"analyze", "--devices", all}).analyze;
        EXPECT_TRUE(c.all_devices) << all;
        EXPECT_TRUE(c.devices.empty()) << all;
    }
    for (const char* mixed : {"all,0", "0,all", "all,all"}) {
        try {
            parse({"analyze", "--devices", mixed});
            ADD_FAILURE() << "expected a usage error for --devices " << mixed;
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find("--devices: 'all' stands alone"),
                      std::string::npos)
                << e.what();
        }
    }
    TempDir dir;
    write_text_file(dir.file("all.toml"), "devices = \"all\"\n");
    EXPECT_TRUE(parse({"analyze", "--config", dir.file("all.toml")}).analyze.all_devices);
    // The command line's ids override the file's "all", and the reverse.
    const AnalyzeConfig ids = parse({"analyze", "--config", dir.file("all.toml"), "--devices", "1"}).analyze;
    EXPECT_FALSE(ids.all_devices);
    EXPECT_EQ(ids.devices, (std::vector<int>{1}));
    write_text_file(dir.file("ids.toml"), "devices = [0, 1]\n");
    EXPECT_TRUE(
        parse({"analyze", "--config", dir.file("ids.toml"), "--devices", "all"}).analyze.all_devices);

    AnalyzeConfig c = job_config();
    c.all_devices = true;
    const std::string toml = config_to_toml(c);
    EXPECT_NE(toml.find("devices = \"all\""), std::string::npos) << toml;
    write_text_file(dir.file("back.toml"), toml);
    EXPECT_TRUE(parse({"analyze", "--config", dir.file("back.toml")}).analyze.all_devices);
}

TEST(Cli, DevicesRoundTripThroughTheResolvedConfig) {
    TempDir dir;
    AnalyzeConfig c = job_config();
    EXPECT_EQ(config_to_toml(c).find("devices"), std::string::npos);  // default left out
    c.devices = {0, 0, 1};
    const std::string toml = config_to_toml(c);
    EXPECT_NE(toml.find("devices = [0, 0, 1]"), std::string::npos) << toml;
    write_text_file(dir.file("c.toml"), toml);
    EXPECT_EQ(parse({"analyze", "--config", dir.file("c.toml")}).analyze.devices,
              (std::vector<int>{0, 0, 1}));
    // The command line overrides the file.
    EXPECT_EQ(parse({"analyze", "--config", dir.file("c.toml"), "--devices", "1"}).analyze.devices,
              (std::vector<int>{1}));
}

TEST(Cli, BadDevicesAreUsageErrorsNamingTheOption) {
    for (const char* bad : {"x", "0,a", "-1", "1.5", "0,-2", "alle", "1234567890"}) {
        try {
            parse({"analyze", "--devices", bad});
            ADD_FAILURE() << "expected a parse error for --devices " << bad;
        } catch (const CLI::ParseError& e) {
            EXPECT_NE(std::string(e.what()).find("--devices"), std::string::npos)
                << bad << ": " << e.what();
        }
    }
}

TEST(CliBinary, BadDevicesExitTwoWithOneLine) {
    for (const char* bad : {"x", "-1", "0,zero"}) {
        const auto r = run_embgeom(std::string("analyze --input x.h5 --dataset /e --output o.h5 "
                                               "--devices ") + bad);
        EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << bad << "\n" << r.err;
        EXPECT_NE(r.err.find("--devices"), std::string::npos) << bad << "\n" << r.err;
    }
}

TEST(CliBinary, DeviceIdBeyondTheDeviceCountIsAResourceErrorNamingBoth) {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA: --devices is never checked";
    if (cuda_device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
    const int count = cuda_device_count();
    try {
        make_backend(BackendKind::kCuda, 1, std::vector<int>{0, count});
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("--devices"), std::string::npos) << what;
        EXPECT_NE(what.find("device " + std::to_string(count)), std::string::npos) << what;
        EXPECT_NE(what.find(std::to_string(count) + " usable CUDA device"), std::string::npos)
            << what;
    }
}

// `embgeom devices` on this machine: with no usable GPU (CI) one error line naming why, exit 4;
// with one (a GPU run) device 0 listed as ready, exit 0.
TEST(CliBinary, DevicesCommandListsTheGpusOrSaysWhyThereIsNone) {
    const auto r = run_embgeom("devices");
    if (cuda_device_count() == 0) {
        EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
        EXPECT_EQ(r.out, "");
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        const std::string expected = cuda_built() ? "embgeom: error: no usable CUDA device: " +
                                                        cuda_no_device_reason()
                                                  : std::string("embgeom: error: this embgeom was "
                                                                "built without CUDA");
        EXPECT_EQ(r.err.rfind(expected, 0), 0u) << r.err;
        return;
    }
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("embgeom devices: CUDA runtime "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\n  0   "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("yes\n"), std::string::npos) << r.out;
}

// Copies that a launcher started as one job but that did not join one (the launcher of another
// MPI than the build's: each would be a job of one rank, run the whole job and race to write the
// same output) stop with one line before anything is read or written. The launcher is simulated
// by its variables: MPICH's MPI_Init then makes the process a job of one rank, as it does when
// Open MPI's mpirun starts it.
TEST(CliBinary, CopiesALauncherStartedApartStopWithOneLine) {
    TempDir dir;
    const std::string in = dir.file("t.h5"), out = dir.file("o.h5");
    ASSERT_EQ(run_embgeom("synth --rows 50 --dim 4 --output " + shell_quote(in)).exit_code, 0);
    for (const std::string env : {"PMI_SIZE=3 PMI_RANK=1", "PMIX_RANK=2 SLURM_STEP_NUM_TASKS=4"}) {
        SCOPED_TRACE(env);
        const test::CommandResult r = test::run_command(
            "env " + env + " timeout 60 " + shell_quote(test::embgeom_binary()) +
            " analyze --backend cpu --input " + shell_quote(in) + " --dataset /embeddings --output " +
            shell_quote(out));
        EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        const std::string copies = env.rfind("PMI_SIZE", 0) == 0 ? "3 copies of embgeom (PMI_SIZE=3)"
                                                 : "4 copies of embgeom (SLURM_STEP_NUM_TASKS=4)";
        EXPECT_EQ(r.err.rfind("embgeom: error: the launcher started " + copies +
                                  " but they did not join one MPI job: this embgeom ",
                              0),
                  0u)
            << r.err;
        EXPECT_FALSE(test::file_exists(out));
    }
    // One copy is no mistake.
    const test::CommandResult one = test::run_command(
        "env PMI_SIZE=1 PMI_RANK=0 timeout 60 " + shell_quote(test::embgeom_binary()) +
        " analyze --backend cpu --input " + shell_quote(in) + " --dataset /embeddings --output " +
        shell_quote(out));
    EXPECT_EQ(one.exit_code, 0) << one.err;
    // srun without an MPI plugin: task 0 runs the job and says, once, that the copies are alone.
    for (const std::string procid : {"0", "1"}) {
        const test::CommandResult r = test::run_command(
            "env -u PMI_SIZE -u PMI_RANK -u PMIX_RANK SLURM_STEP_NUM_TASKS=3 SLURM_PROCID=" +
            procid + " timeout 60 " + shell_quote(test::embgeom_binary()) +
            " analyze --backend cpu --input " + shell_quote(in) +
            " --dataset /embeddings --output " + shell_quote(out));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const bool noted =
            r.err.find("embgeom: note: srun started 3 tasks (SLURM_STEP_NUM_TASKS=3)") !=
            std::string::npos;
        EXPECT_EQ(noted, procid == "0") << r.err;
    }
}

// analyze checks the backend request before it reads the table (then makes the backend while it
// reads): the quick check must refuse exactly what make_backend refuses, with the same message.
TEST(CliBinary, QuickBackendCheckRefusesWhatMakeBackendRefuses) {
    const int count = cuda_device_count();
    const auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_EQ(message([] { check_backend_request(BackendKind::kCpu, {7}); }), "");
    EXPECT_EQ(message([] { check_backend_request(BackendKind::kAuto, {}); }), "");
    const std::string quick = message([] { check_backend_request(BackendKind::kCuda, {}); });
    const std::string full = message([] { make_backend(BackendKind::kCuda, 1); });
    EXPECT_EQ(quick, full);
    EXPECT_EQ(quick.empty(), cuda_built() && count > 0) << quick;
    if (count > 0) {
        const std::vector<int> ids{0, count};
        const std::string q = message([&] { check_backend_request(BackendKind::kCuda, ids); });
        EXPECT_EQ(q, message([&] { make_backend(BackendKind::kCuda, 1, ids); }));
        EXPECT_NE(q.find("device " + std::to_string(count)), std::string::npos) << q;
    }
    // Through the CLI (input checked first, then the output folder, then the backend, all before
    // the table is read), a missing GPU is exit code 4 and leaves no output file.
    if (!(cuda_built() && count > 0)) {
        TempDir dir;
        const std::string in = dir.file("t.h5");
        ASSERT_EQ(run_embgeom("synth --rows 50 --dim 4 --output " + shell_quote(in)).exit_code, 0);
        const auto r = run_embgeom("analyze --backend cuda --input " + shell_quote(in) +
                                   " --dataset /embeddings --output " + shell_quote(dir.file("o.h5")));
        EXPECT_EQ(r.exit_code, 4) << r.err;
        EXPECT_FALSE(test::file_exists(dir.file("o.h5")));
    }
}

TEST(CliBinary, VersionSaysWhatTheBuildHas) {
    const auto r = run_embgeom("--version");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("embgeom ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(std::string("\nCUDA backend: ") + (cuda_built() ? "built" : "not built")),
              std::string::npos)
        << r.out;
    // The MPI library's own first line ("MPICH Version: 4.0.2", "Open MPI v4.1.4, ..."), or
    // "built without MPI".
    const auto mpi = r.out.find("\nMPI: ");
    ASSERT_NE(mpi, std::string::npos) << r.out;
    EXPECT_GT(r.out.size(), mpi + 7) << r.out;
    EXPECT_EQ(r.out.find('\t'), std::string::npos) << r.out;
}

TEST(CliBinary, HelpListsEveryOptionAndExitsZero) {
    const auto r = run_embgeom("analyze --help");
    EXPECT_EQ(r.exit_code, 0);
    for (const char* opt : {"--input", "--dataset", "--output", "--vocab", "--vocab-file",
                            "--bias-dataset", "--topk", "--outliers", "--backend", "--threads",
                            "--memory-budget", "--config", "--hist-bins", "--dup-threshold",
                            "--center", "--write-matrix", "--matrix-dtype", "--max-matrix-bytes",
                            "--device-memory-budget", "--precision", "--devices"})
        EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
    for (const char* sub : {"synth --help", "inspect --help", "demo --help", "--help"})
        EXPECT_EQ(run_embgeom(sub).exit_code, 0) << sub;
}

TEST(CliBinary, PicksFastBlasKernelsByItselfAndRespectsTheEnvironment) {
    TempDir dir;
    const std::string table = dir.file("t.h5");
    ASSERT_EQ(run_embgeom("synth --rows 50 --dim 8 --output " + shell_quote(table)).exit_code, 0);
    const std::string job = "analyze --input " + shell_quote(table) + " --dataset /embeddings --output " +
                            shell_quote(dir.file("o.h5")) + " --backend cpu";
    // A choice already made in the environment is kept and named in the log.
    auto r = test::run_command("OPENBLAS_CORETYPE=Haswell " + shell_quote(test::embgeom_binary()) + " " + job);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Haswell kernels (OPENBLAS_CORETYPE=Haswell from the environment)"), std::string::npos) << r.out;
    // Without one, the kernels follow the CPU's features, whatever OpenBLAS detected by model name.
    r = test::run_command("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE " + shell_quote(test::embgeom_binary()) + " " + job);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("kernels"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("from the environment"), std::string::npos) << r.out;
}

TEST(BlasKernels, ForcesTheWidestKernelsOnlyWhenOpenBlasRunsNarrowerOnes) {
    // Debian's OpenBLAS 0.3.21 detects some AVX-512 CPUs as "Prescott" (SSE3 kernels, ~6x slower).
    EXPECT_EQ(coretype_to_force("Prescott", true, true), "SkylakeX");
    EXPECT_EQ(coretype_to_force("Haswell", true, true), "SkylakeX");
    EXPECT_EQ(coretype_to_force("Zen", true, true), "SkylakeX");
    EXPECT_EQ(coretype_to_force("Cooperlake", true, true), "");
    EXPECT_EQ(coretype_to_force("SKYLAKEX", true, true), "");
    EXPECT_EQ(coretype_to_force("Prescott", false, true), "Haswell");
    EXPECT_EQ(coretype_to_force("Zen", false, true), "");
    EXPECT_EQ(coretype_to_force("Prescott", false, false), "");
}

TEST(CliBinary, BackendCudaWithoutAGpuFailsClearlyAndAutoFallsBack) {
    if (cuda_device_count() > 0) GTEST_SKIP() << "a usable GPU is present: this checks the GPU-less case";
    TempDir dir;
    const std::string table = dir.file("t.h5"), out = dir.file("o.h5");
    ASSERT_EQ(run_embgeom("synth --rows 50 --dim 8 --output " + shell_quote(table)).exit_code, 0);
    const std::string job = "analyze --input " + shell_quote(table) + " --dataset /embeddings --output " + shell_quote(out);
    auto r = run_embgeom(job + " --backend cuda");
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("CUDA"), std::string::npos) << r.err;
    EXPECT_FALSE(test::file_exists(out));
    r = run_embgeom(job + " --backend auto");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("running on the CPU backend"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("backend: cpu"), std::string::npos) << r.out;
}

TEST(CliBinary, UsageErrorsExitTwoWithOneLine) {
    TempDir dir;
    write_text_file(dir.file("bad.toml"), "nonsense_key = 1\n");
    for (const std::string& args :
         {std::string("analyze --backend tpu"), std::string("frobnicate"),
          "analyze --config " + shell_quote(dir.file("bad.toml")),
          std::string("analyze --input x.h5 --dataset /e")}) {
        const auto r = run_embgeom(args);
        EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
        EXPECT_NE(r.err.find("embgeom: error:"), std::string::npos) << r.err;
    }
}

}  // namespace
}  // namespace embgeom
