#include "pipeline/analyze_job.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <type_traits>

#include "analysis/hubness.hpp"
#include "analysis/null_model.hpp"
#include "analysis/outlier_ranking.hpp"
#include "analysis/summary_stats.hpp"
#include "core/cpu_affinity.hpp"
#include "core/large_host_buffer.hpp"
#include "core/openmp_threads.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/build_info.hpp"
#include "embgeom/errors.hpp"
#include "engine/k_occurrence.hpp"
#include "io/result_file.hpp"
#include "io/table_reader.hpp"
#include "pipeline/csls_stage.hpp"
#include "pipeline/geometry_stages.hpp"
#include "pipeline/memory_plan.hpp"
#include "pipeline/null_models.hpp"
#include "pipeline/per_token_passes.hpp"
#include "pipeline/progress.hpp"
#include "pipeline/result_layout.hpp"
#include "pipeline/table_hold.hpp"
#include "scaleout/job_ranks.hpp"

namespace embgeom {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// An environment switch such as EMBGEOM_NO_MMAP: on only when set to "1".
bool env_switch(const char* name) {
    const char* v = std::getenv(name);
    return v && std::string(v) == "1";
}

std::vector<std::string> load_vocab(const AnalyzeConfig& cfg, const RowSource& table) {
    std::vector<std::string> vocab;
    std::string from;
    if (cfg.vocab_dataset) {
        vocab = read_string_dataset(cfg.input, *cfg.vocab_dataset);
        from = cfg.input + ":" + *cfg.vocab_dataset;
    } else if (cfg.vocab_file) {
        vocab = read_vocab_file(*cfg.vocab_file);
        from = *cfg.vocab_file;
    } else {
        return vocab;
    }
    if (static_cast<std::int64_t>(vocab.size()) != table.rows())
        throw InputError(from + ": has " + std::to_string(vocab.size()) + " tokens but " +
                         table.describe() + " has " + std::to_string(table.rows()) + " rows");
    return vocab;
}

/// The table in memory for the per-token passes and the all-pairs engine when it fits comfortably
/// in the budget: mapped from the file where it is stored as used (float32, contiguous: no read,
/// no private copy; EMBGEOM_NO_MMAP=1 turns this off), else read once. A larger table stays in
/// the file and each pass reads it in row blocks: mapping it whole would not bound what the run
/// holds (its pages count against the job's memory, as a cache the kernel may drop).
class CachedTable {
  public:
    CachedTable(Hdf5TableReader& file, std::uint64_t budget) : file_(file) {
        const std::uint64_t bytes = std::uint64_t(file.rows()) * file.cols() * sizeof(float);
        if (bytes > budget / 2) return;
        if (!env_switch("EMBGEOM_NO_MMAP")) {
            if (const float* rows = file.mapped_rows()) {
                memory_ = std::make_unique<MemoryRowSource>(
                    MatrixView<const float>(rows, file.rows(), file.cols()), file.describe());
                return;
            }
        }
        data_ = LargeHostBuffer<float>(static_cast<std::size_t>(file.rows() * file.cols()),
                                       "the table held in memory");
        file.read_rows(0, file.rows(), data_.data());
        memory_ = std::make_unique<MemoryRowSource>(
            MatrixView<const float>(data_.data(), file.rows(), file.cols()), file.describe());
    }
    RowSource& source() { return memory_ ? static_cast<RowSource&>(*memory_) : file_; }
    /// What the cached table takes from the budget (a mapped one too: its pages count).
    std::uint64_t bytes_held() const {
        return memory_ ? std::uint64_t(file_.rows()) * file_.cols() * sizeof(float) : 0;
    }
    /// Held in memory without a buffer of its own: mapped from the file.
    bool mapped() const { return memory_ && !data_.data(); }

  private:
    Hdf5TableReader& file_;
    LargeHostBuffer<float> data_;
    std::unique_ptr<MemoryRowSource> memory_;
};

// What an MPI job of several ranks cannot do, found before anything is read.
void check_rank_config(const AnalyzeConfig& cfg, const scaleout::JobRanks& ranks) {
    const std::string job = "in an MPI job of " + std::to_string(ranks.size) + " ranks";
    if (cfg.all_pairs && cfg.write_matrix && !scaleout::ranks_can_send_matrix_tiles())
        throw UsageError("--write-matrix " + job + ": this MPI library (" +
                         scaleout::mpi_library_version() +
                         ") does not let threads call it in turn (MPI_THREAD_SERIALIZED), which "
                         "sending the matrix's tiles to rank 0 needs; run the job without mpiexec");
    if (cfg.backend != BackendKind::kCpu && cfg.devices.size() > 1)
        throw UsageError("--devices lists " + std::to_string(cfg.devices.size()) + " GPUs " + job +
                         ": each rank runs one GPU (by default the GPU of its local rank); start "
                         "one rank per GPU");
}

// The configuration that decides the results and the plans the ranks share, as TOML: all of it
// but what each rank may set for itself (threads, host memory, its GPU, the output path only
// rank 0 writes).
std::string config_every_rank_shares(const AnalyzeConfig& cfg) {
    AnalyzeConfig c = cfg;
    c.threads = 0;
    c.memory_budget = 0;
    c.devices.clear();
    c.all_devices = false;
    c.output.clear();
    return config_to_toml(c);
}

// What tells two tables apart, in a few lines of text: the shape, the stored type, the valid
// rows, and a hash (FNV-1a) of the valid flags and the centroid's float64 bits, which are the
// same on every rank that reads the same values (column sums in row order on every backend).
std::string table_fingerprint(std::int64_t V, std::int64_t d, const Hdf5TableReader& reader,
                              const PerToken& tok) {
    std::uint64_t h = 1469598103934665603ull;
    const auto mix = [&h](const void* data, std::size_t bytes) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
    };
    mix(tok.valid.data(), tok.valid.size());
    mix(tok.centroid.data(), tok.centroid.size() * sizeof(double));
    std::ostringstream s;
    s << "shape = " << V << " x " << d << "\nstored as " << to_string(reader.stored_dtype())
      << "\nvalid rows = " << std::count(tok.valid.begin(), tok.valid.end(), 1)
      << "\nvalues hash to " << std::hex << h << "\n";
    return s.str();
}

// The GPU of this rank: the --devices id when one is given, else its local rank's, counting the
// machine's usable GPUs (`--devices all` counts the same ones). Empty for the CPU, and where the
// machine lists no GPU (auto then runs on the CPU, and the ranks agree on it or stop).
std::vector<int> rank_devices(const AnalyzeConfig& cfg, const scaleout::JobRanks& ranks) {
    if (cfg.backend == BackendKind::kCpu) return {};
    if (cfg.devices.size() == 1 && !cfg.all_devices) return cfg.devices;
    std::vector<int> usable = cuda_all_devices();
    if (usable.empty()) return {};
    return {usable[static_cast<std::size_t>(ranks.local_rank) % usable.size()]};
}

// Whether both paths name one existing file (by device and inode: a symbolic or hard link, or
// another spelling, is the same file).
bool same_existing_file(const std::string& a, const std::string& b) {
    struct stat sa, sb;
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

// Whether path is the null device (by device number, so any name for it counts).
bool is_null_device(const std::string& path) {
    struct stat sp, sn;
    return ::stat(path.c_str(), &sp) == 0 && S_ISCHR(sp.st_mode) && ::stat("/dev/null", &sn) == 0 &&
           sp.st_rdev == sn.st_rdev;
}

}  // namespace

void validate_config(const AnalyzeConfig& cfg) {
    if (cfg.input.empty()) throw UsageError("--input is required");
    if (cfg.dataset.empty()) throw UsageError("--dataset is required");
    if (cfg.output.empty()) throw UsageError("--output is required");
    if (cfg.vocab_dataset && cfg.vocab_file)
        throw UsageError("--vocab and --vocab-file exclude each other");
    // The result file replaces its path when the job ends: it would replace the user's table.
    if (same_existing_file(cfg.output, cfg.input))
        throw UsageError("--output " + cfg.output + " is the input file (--input " + cfg.input +
                         "): the results would replace the table; choose another output path");
    if (cfg.vocab_file && same_existing_file(cfg.output, *cfg.vocab_file))
        throw UsageError("--output " + cfg.output + " is the --vocab-file " + *cfg.vocab_file +
                         ": the results would replace it; choose another output path");
    if (cfg.topk < 1) throw UsageError("--topk must be at least 1");
    if (cfg.outliers < 0) throw UsageError("--outliers must not be negative");
    if (cfg.threads < 0) throw UsageError("--threads must not be negative");
    if (cfg.block_rows < 0) throw UsageError("--block-rows must not be negative");
    for (const int id : cfg.devices)
        if (id < 0)
            throw UsageError("--devices: device ids must not be negative (got " +
                             std::to_string(id) + ")");
    if (cfg.hist_bins < 1 || cfg.hist_bins > 10000000)
        throw UsageError("--hist-bins must be between 1 and 10000000");
    if (!(cfg.dup_threshold >= -1.0 && cfg.dup_threshold <= 1.0))
        throw UsageError("--dup-threshold must be in [-1, 1]");
    if (cfg.max_dup_pairs < 0) throw UsageError("--max-dup-pairs must not be negative");
    if (cfg.matrix_gzip < 0 || cfg.matrix_gzip > 9)
        throw UsageError("--matrix-gzip must be between 0 and 9");
}

AnalyzeReport run_analyze(const AnalyzeConfig& requested, std::ostream& log) {
    const auto t_start = Clock::now();
    validate_config(requested);
    AnalyzeConfig cfg = requested;  // with --threads 0 resolved, below
    Hdf5TableReader reader(cfg.input, cfg.dataset);
    const std::int64_t V = reader.rows(), d = reader.cols();
    if (cfg.all_pairs && cfg.topk >= V)
        throw UsageError("--topk " + std::to_string(cfg.topk) +
                         " must be smaller than the number "
                         "of tokens (" +
                         std::to_string(V) + " in " + reader.describe() + ")");
    const std::vector<std::string> vocab = load_vocab(cfg, reader);
    std::vector<double> bias;
    if (cfg.bias_dataset) bias = read_vector(cfg.input, *cfg.bias_dataset, d);
    if (cfg.csls && !cfg.all_pairs)
        throw UsageError("--csls needs the all-pairs engine (drop --no-all-pairs)");
    if (cfg.all_pairs && cfg.write_matrix) {
        const double bytes =
            double(V) * double(V) * (cfg.matrix_dtype == MatrixDtype::kFloat16 ? 2 : 4);
        if (bytes > double(cfg.max_matrix_bytes))
            throw UsageError(
                "--write-matrix: the " + std::to_string(V) + " x " + std::to_string(V) + " " +
                to_string(cfg.matrix_dtype) + " matrix would take " + format_bytes(bytes) +
                ", over --max-matrix-bytes " + format_bytes(double(cfg.max_matrix_bytes)));
    }
    validate_geometry_config(cfg, V);
    // The ranks of an MPI job on one machine split its memory (each holds the table).
    const scaleout::JobRanks& ranks = scaleout::job_ranks();
    const std::uint64_t budget =
        cfg.memory_budget ? cfg.memory_budget
                          : std::max<std::uint64_t>(default_memory_budget() / ranks.local_size,
                                                    256ull << 20);
    // The neighbour lists (V x K cosines and ids, 12 bytes each) are held whatever the plan: past
    // the memory the job may use it could only be killed part way; past the budget it runs,
    // the rest of the plan held to the budget, and says so.
    std::string lists_note;
    if (cfg.all_pairs) {
        const double lists = double(V) * double(cfg.topk) * 12.0;
        const double memory = double(memory_this_process_may_use()) / ranks.local_size;
        const std::string what = "--topk " + std::to_string(cfg.topk) +
                                 ": the neighbour lists of " + std::to_string(V) + " tokens take " +
                                 format_bytes(lists) + " (tokens x K x 12 bytes)";
        if (lists > memory)
            throw ResourceError(
                what + ", more than the memory this job may use (" + format_bytes(memory) +
                (ranks.local_size > 1 ? " for each of the " + std::to_string(ranks.local_size) +
                                            " ranks on this machine"
                                      : std::string()) +
                "); lower --topk");
        if (lists > double(budget))
            lists_note = what + ", more than --memory-budget " + format_bytes(double(budget)) +
                         ": they are held anyway, and the rest of the plan is held to the budget";
    }
    if (ranks.several()) {
        check_rank_config(cfg, ranks);
        scaleout::check_same_on_every_rank("configuration", config_every_rank_shares(cfg));
    }
    // --threads 0: a thread per core this process may use, its CPU quota counted (OpenMP's own
    // default counts every core of its affinity mask, however little time a quota leaves them),
    // split between the ranks that may run on the same cores (an MPI launcher that binds none,
    // as MPICH's, leaves every rank the whole machine). After the agreement above: a collective.
    const int sharing_cores = scaleout::ranks_sharing_my_cores();
    if (cfg.threads == 0) cfg.threads = default_thread_count(sharing_cores);
    // Every parallel region and BLAS call this thread starts without a count of its own (the
    // CUDA backend's staging copies among them) takes --threads too.
    const OpenMpThreads job_threads(cfg.threads);

    // Fails now, before any compute, if the folder is unwritable. Rank 0 of an MPI job writes the
    // results; the other ranks compute the same ones and drop them.
    // --output /dev/null runs the whole job and drops the results (a timing run), as the ranks
    // other than 0 do; a file renamed onto the device would replace it.
    ResultFile out(cfg.output, ranks.root() && !is_null_device(cfg.output)
                                   ? ResultFileMode::kWrite
                                   : ResultFileMode::kDiscard);
    // The backend is made while the table is read: a CUDA context and cuBLAS take 0.1-0.2 s on an
    // H100 machine, as long as reading a GPT-2-size table. Its quick checks (a GPU present, the
    // --devices ids) run first, so a bad request still fails before the read.
    // --devices all becomes the machine's ids here (a CPU run never asks the CUDA runtime).
    std::string devices_left_out;
    const std::vector<int> devices = ranks.several()  ? rank_devices(cfg, ranks)
                                     : cfg.all_devices && cfg.backend != BackendKind::kCpu
                                         ? cuda_all_devices(&devices_left_out)
                                         : cfg.devices;
    check_backend_request(cfg.backend, devices);
    std::string notice;
    double seconds_backend_start = 0.0;
    auto backend_ready = std::async(std::launch::async, [&] {
        const auto t = Clock::now();
        std::unique_ptr<Backend> b = make_backend(cfg.backend, cfg.threads, devices, &notice);
        b->prepare();
        seconds_backend_start = seconds_since(t);
        return b;
    });

    AnalyzeReport report;
    report.output = cfg.output;
    report.rows = V;
    report.dims = d;
    const auto t_read = Clock::now();
    CachedTable table(reader, budget);
    report.seconds_read = seconds_since(t_read);
    report.table_mapped = table.mapped();
    // In an MPI job: the all-pairs passes shared by the ranks (a collective step).
    std::unique_ptr<Backend> backend =
        scaleout::share_between_ranks(backend_ready.get(), devices.empty() ? 0 : devices[0]);
    report.seconds_backend_start = seconds_backend_start;
    report.backend = backend->name();
    if (!notice.empty()) log << "embgeom: note: " << notice << "\n";
    if (!lists_note.empty()) log << "embgeom: note: " << lists_note << "\n";
    if (!devices_left_out.empty() && notice.empty())
        log << "embgeom: note: --devices all leaves out " << devices_left_out << "\n";
    if (const std::string n =
            thread_oversubscription_note(requested.threads, cores_this_process_may_use(),
                                         sharing_cores);
        !n.empty())
        log << "embgeom: note: " << n << "\n";
    log << "embgeom analyze: " << reader.describe() << " (" << V << " tokens x " << d << " dims, "
        << to_string(reader.stored_dtype()) << ")\n  backend: " << report.backend << "\n";

    AllPairsOptions opt;
    opt.k = cfg.topk;
    opt.hist_bins = cfg.hist_bins;
    opt.dup_threshold = cfg.dup_threshold;
    opt.max_dup_pairs = cfg.max_dup_pairs;
    opt.block_rows = cfg.block_rows;
    opt.precision = cfg.precision;
    // What the cached table leaves of the budget; a budget below the engine's smallest plan
    // (two grid tiles of rows plus the neighbour lists) runs that plan.
    opt.memory_budget = budget > table.bytes_held() ? budget - table.bytes_held() : 1;
    opt.device_memory_budget =
        cfg.device_memory_budget ? cfg.device_memory_budget : kWholeDeviceBudget;

    // On CUDA the table crosses to the device once, for every pass below, where it fits beside
    // the all-pairs engine's plan (Backend::hold_table); EMBGEOM_NO_DEVICE_TABLE=1 leaves the
    // device memory to the engine and copies the table for each pass instead.
    TableHold hold(*backend, table.source(), opt, !env_switch("EMBGEOM_NO_DEVICE_TABLE"));
    report.table_on_device = hold.held();
    report.seconds_to_device = hold.seconds();
    report.table_on_device_dtype = hold.dtype();

    const auto t_tokens = Clock::now();
    const PerToken tok =
        per_token_passes(table.source(), *backend, per_token_block_rows(cfg, budget, V, d),
                         bias.empty() ? nullptr : &bias);
    report.seconds_per_token = seconds_since(t_tokens);
    report.valid_rows = std::count(tok.valid.begin(), tok.valid.end(), 1);
    // Ranks that read "the same" file from different copies (a node-local disk) would add up
    // shares of different tables: the centroid's bits tell them apart before anything is shared.
    if (ranks.several())
        scaleout::check_same_on_every_rank("table", table_fingerprint(V, d, reader, tok));

    ResultLayout layout(out, vocab, cfg.outliers);
    layout.write_per_token(tok.norms, tok.centered_norms, tok.bias_norms, tok.centroid, tok.finite,
                           tok.valid, tok.zero_rows);
    report.closest_to_centroid = layout.closest_to_centroid_ids();

    std::string precision_ran = "none";  // the main all-pairs pass's product (root attribute)
    if (cfg.all_pairs) {
        std::unique_ptr<MatrixSink> sink;
        // The matrix's chunks cut by tile edges wait in memory for their other pieces: an eighth
        // of the budget, at most the writer's default, at least 16 MiB (past it, HDF5's cache).
        const std::size_t waiting_chunks = static_cast<std::size_t>(std::clamp<std::uint64_t>(
            budget / 8, std::uint64_t{16} << 20, ResultFile::kDefaultWaitingChunkBudget));
        // In an MPI job rank 0 writes the matrix, its tiles coming from every rank.
        if (cfg.write_matrix)
            sink =
                ranks.root()
                    ? out.create_square_matrix("/cosine/matrix", V, cfg.matrix_dtype,
                                               cfg.matrix_gzip, waiting_chunks)
                    : scaleout::matrix_written_by_rank0(cfg.matrix_dtype == MatrixDtype::kFloat16);
        opt.matrix = sink.get();
        opt.progress = progress_reporter("all pairs");
        const auto t_pairs = Clock::now();
        AllPairsResult raw = backend->all_pairs(table.source(), tok.valid, opt);
        precision_ran = to_string(raw.precision);
        report.seconds_all_pairs = seconds_since(t_pairs);
        report.all_pairs_gflops = raw.seconds > 0 ? raw.gflop / raw.seconds : 0.0;
        report.all_pairs_phases = raw.phase_seconds;
        layout.write_all_pairs("", "", raw, tok.valid, engine::k_occurrence(raw));
        if (cfg.csls)
            run_csls(*backend, cfg, table.source(), tok.valid, raw, opt, out, layout, log);
        if (cfg.center) {
            opt.center = tok.centroid;
            opt.matrix = nullptr;
            opt.progress = progress_reporter("all pairs (centred)");
            AllPairsResult centered = backend->all_pairs(table.source(), tok.valid, opt);
            layout.write_all_pairs("/centered", " (centred)", centered, tok.valid,
                                   engine::k_occurrence(centered));
            opt.center.reset();
        }
        opt.matrix = nullptr;
        opt.progress = nullptr;
    }
    if (any_geometry_stage(cfg)) {
        const GeometryInputs geo{table.source(),
                                 tok.finite,
                                 tok.valid,
                                 tok.centroid,
                                 vocab,
                                 bias.empty() ? nullptr : &bias,
                                 cfg.all_pairs ? &opt : nullptr};
        run_geometry_stages(cfg, geo, *backend, out, layout, log);
    }

    run_null_models(cfg, table.source(), tok, *backend, cfg.all_pairs ? &opt : nullptr, out, layout,
                    log);
    layout.write_headline(V, d);
    out.set_attribute("/", "embgeom_version", std::string(kVersion));
    out.set_attribute("/", "input_file", cfg.input);
    out.set_attribute("/", "input_dataset", cfg.dataset);
    out.set_attribute("/", "input_dtype", std::string(to_string(reader.stored_dtype())));
    out.set_attribute("/", "rows", V);
    out.set_attribute("/", "dims", d);
    out.set_attribute("/", "backend", report.backend);
    out.set_attribute("/", "mpi_ranks", static_cast<std::int64_t>(ranks.size));
    if (ranks.several()) {
        std::string each;
        for (const std::string& line : scaleout::rank_backends()) each += line + "\n";
        out.set_attribute("/", "mpi_rank_backends", each);
    }
    out.set_attribute("/", "precision", precision_ran);
    AnalyzeConfig resolved = cfg;
    resolved.memory_budget = budget;
    if (cfg.all_devices && !devices.empty()) {  // the ids that ran; "all" where none was found
        resolved.devices = devices;
        resolved.all_devices = false;
    }
    out.set_attribute("/", "config", config_to_toml(resolved));
    report.seconds_total = seconds_since(t_start);
    // Timings live on the root only: everything below it is independent of how the run went.
    out.set_attribute("/", "table_on_device", static_cast<std::int64_t>(report.table_on_device));
    out.set_attribute("/", "seconds_table_to_device", report.seconds_to_device);
    out.set_attribute("/", "table_on_device_dtype",
                      report.table_on_device ? report.table_on_device_dtype : std::string("none"));
    out.set_attribute("/", "seconds_per_token_passes", report.seconds_per_token);
    out.set_attribute("/", "seconds_all_pairs", report.seconds_all_pairs);
    out.set_attribute("/", "all_pairs_gflop_per_s", report.all_pairs_gflops);
    for (const auto& [name, seconds] : report.all_pairs_phases) {
        std::string key = "seconds_all_pairs_" + name;
        std::replace(key.begin(), key.end(), '-', '_');
        out.set_attribute("/", key, seconds);
    }
    out.set_attribute("/", "seconds_total", report.seconds_total);
    // Every rank has finished its part: rank 0 may keep the results.
    scaleout::agree();
    const auto t_commit = Clock::now();
    out.commit();
    const double seconds_commit = seconds_since(t_commit);
    // What the backend gives back (on CUDA: device and page-locked memory, streams, handles),
    // timed: a GPU run's wall time exceeded its total by ~0.3 s on an H100 machine.
    const auto t_release = Clock::now();
    hold.release();
    backend.reset();
    const double seconds_release = seconds_since(t_release);

    layout.print_summary(log);
    log << std::fixed << std::setprecision(2)
        << "  time: " << (report.table_mapped ? "table mapped from the file in " : "read ")
        << report.seconds_read << " s (backend start " << report.seconds_backend_start
        << " s beside it), ";
    if (report.table_on_device)
        log << "table to the device " << report.seconds_to_device << " s (as "
            << report.table_on_device_dtype << "), ";
    log << "per-token passes " << report.seconds_per_token << " s";
    if (cfg.all_pairs) {
        log << ", all pairs " << report.seconds_all_pairs << " s (";
        for (const auto& [name, seconds] : report.all_pairs_phases)
            log << name << " " << seconds << " s, ";
        log << std::setprecision(1) << report.all_pairs_gflops << " GFLOP/s)";
    }
    log << std::setprecision(2) << ", total " << report.seconds_total << " s; then written in "
        << seconds_commit << " s, backend released in " << seconds_release << " s\n"
        << (is_null_device(cfg.output) ? "  results dropped (--output " + cfg.output + ")"
                                       : "  wrote " + cfg.output)
        << "\n";
    return report;
}

std::string config_to_toml(const AnalyzeConfig& c) {
    std::ostringstream s;
    auto q = [](const std::string& v) {
        std::string r = "\"";
        for (char ch : v) {
            if (ch == '"' || ch == '\\') r += '\\';
            r += ch;
        }
        return r + "\"";
    };
    s << std::setprecision(17);
    s << "input = " << q(c.input) << "\ndataset = " << q(c.dataset) << "\noutput = " << q(c.output)
      << "\n";
    if (c.vocab_dataset) s << "vocab = " << q(*c.vocab_dataset) << "\n";
    if (c.vocab_file) s << "vocab-file = " << q(*c.vocab_file) << "\n";
    if (c.bias_dataset) s << "bias-dataset = " << q(*c.bias_dataset) << "\n";
    s << "topk = " << c.topk << "\noutliers = " << c.outliers
      << "\nbackend = " << q(to_string(c.backend)) << "\nprecision = " << q(to_string(c.precision))
      << "\nthreads = " << c.threads;
    if (c.memory_budget) s << "\nmemory-budget = " << c.memory_budget;
    if (c.device_memory_budget) s << "\ndevice-memory-budget = " << c.device_memory_budget;
    s << "\nblock-rows = " << c.block_rows << "\nall-pairs = " << (c.all_pairs ? "true" : "false")
      << "\nhist-bins = " << c.hist_bins << "\ndup-threshold = " << c.dup_threshold
      << "\nmax-dup-pairs = " << c.max_dup_pairs << "\ncenter = " << (c.center ? "true" : "false")
      << "\nwrite-matrix = " << (c.write_matrix ? "true" : "false")
      << "\nmatrix-dtype = " << q(to_string(c.matrix_dtype)) << "\nmatrix-gzip = " << c.matrix_gzip
      << "\nmax-matrix-bytes = " << c.max_matrix_bytes
      << "\nprincipal = " << (c.principal ? "true" : "false") << "\nrogue-top = " << c.rogue_top
      << "\nremove-top = " << c.remove_top
      << "\nundertrained = " << (c.undertrained ? "true" : "false");
    auto list = [&](const char* key, const auto& v, bool quote) {
        if (v.empty()) return;
        s << "\n" << key << " = [";
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i) s << ", ";
            if constexpr (std::is_same_v<std::decay_t<decltype(v[0])>, std::string>)
                s << q(v[i]);
            else
                s << v[i];
        }
        s << "]";
        (void)quote;
    };
    list("reference-ids", c.reference_ids, false);
    if (!c.reference_range.empty()) s << "\nreference-range = " << q(c.reference_range);
    if (!c.reference_regex.empty()) s << "\nreference-regex = " << q(c.reference_regex);
    s << "\ncsls = " << (c.csls ? "true" : "false");
    s << "\ncandidate-quantile = " << c.candidate_quantile << "\nsimplex = " << c.simplex;
    list("simplex-plane", c.simplex_plane, false);
    s << "\nsimplex-directions = " << c.simplex_directions
      << "\ncorner-tokens = " << c.corner_tokens;
    list("null", c.null_models, true);
    if (c.all_devices)
        s << "\ndevices = \"all\"";
    else
        list("devices", c.devices, false);
    s << "\nseed = " << c.seed << "\n";
    return s.str();
}

}  // namespace embgeom
