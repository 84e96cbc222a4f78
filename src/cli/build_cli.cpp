#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <map>

#include "cli/cli.hpp"
#include "embgeom/build_info.hpp"
#include "embgeom/errors.hpp"
#include "pipeline/memory_plan.hpp"
#include "scaleout/job_ranks.hpp"

namespace embgeom {
namespace {

bool is_all(const std::string& v) { return CLI::detail::to_lower(v) == "all"; }

void add_analyze(CLI::App& app, CliState& st) {
    AnalyzeConfig& c = st.analyze;
    CLI::App* a = app.add_subcommand("analyze", "Analyse an embedding table: norms, centroid, "
                                                "all-pairs cosines, statistics, outliers");
    // A key of --config that is also given on the command line is not injected at all (see
    // expand_config_file); TakeLast covers an option repeated on the command line.
    a->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    a->add_option("--config", "TOML file whose keys are these options without '--' "
                              "(e.g. topk = 20); flags on the command line override it");
    a->add_option("-i,--input", c.input, "HDF5 file holding the table (required)");
    a->add_option("-d,--dataset", c.dataset, "2-D [tokens, dims] float16/bfloat16/float32/float64 "
                                             "dataset in --input (required)");
    a->add_option("-o,--output", c.output, "HDF5 file to write; created atomically (required)");
    a->add_option("--vocab", c.vocab_dataset, "1-D string dataset in --input naming the tokens");
    a->add_option("--vocab-file", c.vocab_file, "text file naming the tokens, one per line");
    a->add_option("--bias-dataset", c.bias_dataset, "1-D [dims] dataset in --input: also report "
                                                    "every token's distance to this vector");
    a->add_option("-k,--topk", c.topk, "nearest neighbours per token")->capture_default_str();
    a->add_option("--outliers", c.outliers, "rows per outlier list")->capture_default_str();
    const std::map<std::string, BackendKind> backends{
        {"auto", BackendKind::kAuto}, {"cpu", BackendKind::kCpu}, {"cuda", BackendKind::kCuda}};
    a->add_option("--backend", c.backend, "auto (CUDA when a GPU is usable, else CPU), cpu, cuda")
        ->transform(CLI::CheckedTransformer(backends, CLI::ignore_case))
        ->default_str("auto");
    const std::map<std::string, Precision> precisions{
        {"auto", Precision::kAuto}, {"exact", Precision::kExact}, {"tf32", Precision::kTf32},
        {"bf16", Precision::kBf16}, {"fp16", Precision::kFp16}};
    a->add_option("--precision", c.precision,
                  "all-pairs product on the GPU: auto (fastest that keeps the exact top-K), exact "
                  "(float32), tf32, bf16, fp16 (tensor cores; candidates re-scored in float32); "
                  "the CPU always computes exact float32")
        ->transform(CLI::CheckedTransformer(precisions, CLI::ignore_case))
        ->default_str("auto");
    a->add_option("--threads", c.threads, "CPU threads (0 = OMP_NUM_THREADS where set, else one per core this process may use, its CPU quota counted)")->capture_default_str();
    a->add_option("--devices", st.devices_text,
                  "CUDA devices sharing the all-pairs tiles, e.g. 0,1, or all (every GPU of the "
                  "model most of them are) (default: device 0); results are identical to one "
                  "device")
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->type_name("ID|all")
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
                const bool id = !v.empty() && v.size() <= 9 &&
                                std::all_of(v.begin(), v.end(), [](unsigned char ch) {
                                    return std::isdigit(ch) != 0;
                                });
                if (id || is_all(v)) return "";
                return "'" + v + "' is neither a device id (0, 1, ...) nor all";
            },
            ""));
    a->add_option("--memory-budget", st.memory_budget_text,
                  "host memory the run may hold, e.g. 8G (default: half of physical memory, or of the job's cgroup memory limit where smaller)");
    a->add_option_function<std::string>(
        "--device-memory-budget",
        [&c](const std::string& v) {
            c.device_memory_budget = parse_byte_size(v, "--device-memory-budget");
        },
        "GPU memory the CUDA backend may hold, e.g. 40G (default and cap: the free device "
        "memory less 256 MiB); beyond it row blocks are streamed");
    a->add_option("--block-rows", c.block_rows, "rows per streamed block and tile side "
                                                "(0 = chosen from the memory budget)")
        ->capture_default_str();
    a->add_flag("--all-pairs,!--no-all-pairs", c.all_pairs,
                "run the all-pairs cosine engine (neighbours, histogram, hubness); default on");
    a->add_option("--hist-bins", c.hist_bins, "bins of the pairwise cosine histogram over [-1, 1]")
        ->capture_default_str();
    a->add_option("--dup-threshold", c.dup_threshold, "list pairs with cosine >= this as near-duplicates")
        ->capture_default_str();
    a->add_option("--max-dup-pairs", c.max_dup_pairs, "cap on the near-duplicate list")->capture_default_str();
    a->add_flag("--center", c.center, "also analyse the centred vectors x - mean (under /centered)");
    a->add_flag("--write-matrix", c.write_matrix, "write the full cosine matrix to /cosine/matrix");
    const std::map<std::string, MatrixDtype> dtypes{{"float16", MatrixDtype::kFloat16},
                                                    {"float32", MatrixDtype::kFloat32}};
    a->add_option("--matrix-dtype", c.matrix_dtype, "float16 or float32")
        ->transform(CLI::CheckedTransformer(dtypes, CLI::ignore_case))
        ->default_str("float32");
    a->add_option("--matrix-gzip", c.matrix_gzip, "gzip level of /cosine/matrix (0 = none)")->capture_default_str();
    a->add_option_function<std::string>(
        "--max-matrix-bytes",
        [&c](const std::string& v) { c.max_matrix_bytes = parse_byte_size(v, "--max-matrix-bytes"); },
        "refuse --write-matrix above this size (default 64G)");

    // The geometry of the cloud (docs/output-schema.md: /principal, /all_but_the_top,
    // /undertrained, /simplex, /null).
    a->add_flag("--principal", c.principal, "covariance spectrum, effective rank, Marchenko-Pastur "
                                            "edge, IsoScore, rogue dimensions (/principal)");
    a->add_option("--rogue-top", c.rogue_top, "dimensions listed by their share of the mean cosine")
        ->capture_default_str();
    a->add_option("--remove-top", c.remove_top, "all-but-the-top: remove the mean and the top D "
                                                "principal directions and recompute norms and "
                                                "cosines (/all_but_the_top; 0 = off)")
        ->capture_default_str();
    a->add_flag("--undertrained", c.undertrained, "under-trained token indicator of Land & Bartolo "
                                                  "2024 (/undertrained); reference set from the "
                                                  "--reference-* options, else automatic");
    a->add_option("--reference-ids", c.reference_ids, "known-unused token ids, e.g. 0,1,100")
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    a->add_option("--reference-range", c.reference_range, "known-unused token ids A:B (= [A, B))");
    a->add_option("--reference-regex", c.reference_regex,
                  "known-unused tokens by their string, e.g. '^\\[unused\\d+\\]$'");
    a->add_option("--candidate-quantile", c.candidate_quantile,
                  "under-trained candidates: tokens at or below this quantile of the indicator")
        ->capture_default_str();
    a->add_option("--simplex", c.simplex, "K simplex vertices by successive projection, with "
                                          "extremeness counts, plane projection and corners "
                                          "(/simplex; 0 = off)")
        ->capture_default_str();
    a->add_option("--simplex-plane", c.simplex_plane, "three token ids spanning the projection "
                                                      "plane (default: the first three vertices)")
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    a->add_option("--simplex-directions", c.simplex_directions,
                  "random directions for the extremeness counts")->capture_default_str();
    a->add_option("--corner-tokens", c.corner_tokens, "tokens listed per simplex corner")
        ->capture_default_str();
    a->add_flag("--csls", c.csls, "also neighbour lists by CSLS = 2cos - r_x - r_y (r = mean cosine "
                                  "to the K nearest), which demotes hubs (/csls)");
    a->add_option("--null", c.null_models, "also run on Gaussian tables of the same shape: "
                                           "isotropic (same total variance) and/or matched (same "
                                           "per-dimension mean and variance) (/null)")
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->check(CLI::IsMember({"isotropic", "matched"}));
    a->add_option("--seed", c.seed, "seed of the random directions and null tables")
        ->capture_default_str();
}

void add_synth(CLI::App& app, CliState& st) {
    CLI::App* s = app.add_subcommand("synth", "Generate a synthetic embedding table with known answers");
    const std::map<std::string, SynthKind> kinds{{"gaussian", SynthKind::kGaussian},
                                                 {"trained", SynthKind::kTrained}};
    s->add_option("--kind", st.synth.kind, "gaussian (isotropic null model) or trained (bias, simplex, "
                                           "planted under-trained tokens and near-duplicates)")
        ->transform(CLI::CheckedTransformer(kinds, CLI::ignore_case))
        ->default_str("trained");
    s->add_option("--rows", st.synth.rows, "tokens V")->capture_default_str();
    s->add_option("--dim", st.synth.dims, "dimensions d")->capture_default_str();
    s->add_option("--seed", st.synth.seed, "random seed")->capture_default_str();
    s->add_option("--undertrained", st.synth.undertrained,
                  "planted under-trained tokens (trained; -1 = max(8, V/500))")->capture_default_str();
    s->add_option("--duplicate-pairs", st.synth.duplicate_pairs,
                  "planted near-duplicate pairs (trained; -1 = max(4, V/2000))")->capture_default_str();
    const std::map<std::string, SynthDtype> dtypes{{"float32", SynthDtype::kFloat32},
                                                   {"float16", SynthDtype::kFloat16},
                                                   {"bfloat16", SynthDtype::kBFloat16}};
    s->add_option("--dtype", st.synth.dtype, "how /embeddings is stored: float32, float16 (IEEE "
                                             "half) or bfloat16, rounded to nearest even")
        ->transform(CLI::CheckedTransformer(dtypes, CLI::ignore_case))
        ->default_str("float32");
    s->add_option("-o,--output", st.synth_output, "HDF5 file to write")->required();
}

void add_inspect(CLI::App& app, CliState& st) {
    CLI::App* i = app.add_subcommand("inspect", "List the datasets of an HDF5 file (what to pass "
                                                "to --dataset and --vocab)");
    i->add_option("file", st.inspect_file, "HDF5 file")->required();
}

void add_demo(CLI::App& app, CliState& st) {
    CLI::App* d = app.add_subcommand("demo", "Synthesize a trained-like table, analyse it and "
                                             "print the summary (no files needed)");
    d->add_option("--rows", st.demo_rows, "tokens")->capture_default_str();
    d->add_option("--dim", st.demo_dims, "dimensions")->capture_default_str();
    d->add_option("--dir", st.demo_dir, "folder for the demo's files (default: a new temporary folder)");
    d->add_option("--threads", st.demo_threads, "CPU threads (0 = one per core this process may use)")->capture_default_str();
}

void add_devices(CLI::App& app) {
    app.add_subcommand("devices", "List the CUDA devices: which can run this build, their free "
                                  "memory, what --devices all takes (exit 4 when none is ready)");
}

}  // namespace

void build_cli(CLI::App& app, CliState& st) {
    app.require_subcommand(1);
    app.set_version_flag("--version", "embgeom " + std::string(kVersion) + "\nCUDA backend: " +
                                          (kCudaBuilt ? "built" : "not built") +
                                          "\nMPI: " + scaleout::mpi_library_version());
    add_analyze(app, st);
    add_synth(app, st);
    add_inspect(app, st);
    add_demo(app, st);
    add_devices(app);
    app.footer("Exit codes: 0 ok, 2 usage or config error, 3 bad input, 4 resource or runtime error.");
}

void parse_cli(CLI::App& app, CliState& st, const std::vector<std::string>& args) {
    std::vector<std::string> expanded = expand_config_file(app, args);
    std::reverse(expanded.begin(), expanded.end());  // CLI11 takes the vector reversed
    app.parse(expanded);
    if (!st.memory_budget_text.empty())
        st.analyze.memory_budget = parse_byte_size(st.memory_budget_text, "--memory-budget");
    AnalyzeConfig& c = st.analyze;
    c.devices.clear();
    c.all_devices = std::any_of(st.devices_text.begin(), st.devices_text.end(), is_all);
    if (c.all_devices && st.devices_text.size() > 1)
        throw UsageError("--devices: 'all' stands alone, not beside device ids");
    if (!c.all_devices)
        for (const std::string& id : st.devices_text) c.devices.push_back(std::stoi(id));
}

}  // namespace embgeom
