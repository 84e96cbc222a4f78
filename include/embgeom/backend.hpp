#pragma once
// The compute interface the driver talks to. The driver streams row blocks and never knows which
// backend runs; CPU and CUDA implement the same calls and must give the same answers.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "embgeom/config.hpp"
#include "embgeom/matrix_view.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

// Results and options of two geometry analyses that run on the Backend; host-only structs defined
// beside the analyses (src/geometry/csls.hpp, src/geometry/extremeness.hpp), which callers of
// Backend::csls_neighbors and Backend::extremeness include.
struct CslsNeighbors;
struct ExtremenessOptions;
struct Extremeness;

/// Receives the cosine matrix tile by tile when --write-matrix is on.
class MatrixSink {
  public:
    virtual ~MatrixSink() = default;
    /// tile holds cos(x_{row0 + r}, x_{col0 + c}); called once per tile with row0 <= col0. The
    /// sink writes the tile and, when row0 != col0, its transpose. Rows or columns of invalid
    /// (non-finite) tokens hold NaN.
    virtual void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) = 0;
    /// Whether write_tile may be called from several threads at once (the CPU engine then hands
    /// tiles on from every thread, and the sink packs them in parallel); when false the callers
    /// make one call at a time.
    virtual bool takes_tiles_concurrently() const { return false; }
    /// Whether the sink keeps the values as IEEE float16 (--matrix-dtype float16): then they may
    /// travel to it as float16 (an MPI rank's tiles to rank 0) without changing what it keeps.
    virtual bool stores_float16() const { return false; }
};

/// One pair of tokens whose cosine reached --dup-threshold; i < j.
struct DuplicatePair {
    std::int64_t i = 0;
    std::int64_t j = 0;
    float cosine = 0.0f;
};

/// The product the all-pairs engine ran (AllPairsResult::precision), as resolved from the request
/// by the policy in docs/output-schema.md ("Precision"):
/// - kExact: float32 GEMM of the normalised rows;
/// - kTf32, kBf16, kFp16: tensor-core GEMM of the normalised rows in that type; the K' = min(4K,
///   1024, n_valid - 1) best candidates of each row are re-scored in float32 and the top K taken
///   from them; near-duplicate candidates are re-scored too;
/// - kBf16Raw, kFp16Raw: every value of the table is exactly a bfloat16 / float16, so the raw rows
///   go to the tensor cores as they are (exact products, float32 sums) and the norms are applied
///   after the product: as accurate as kExact, nothing to re-score.
enum class PrecisionPath { kExact, kTf32, kBf16, kFp16, kBf16Raw, kFp16Raw };

/// "exact", "tf32", "bf16", "fp16", "bf16-raw", "fp16-raw" (the root attribute "precision").
const char* to_string(PrecisionPath p);

/// AllPairsOptions::device_memory_budget for "the device's free memory less the reserve": what
/// analyze asks when --device-memory-budget is not given. The host budget says nothing about the
/// GPU's memory, and a device plan held to it would stream, or give up re-scoring, on a GPU with
/// room to spare.
inline constexpr std::uint64_t kWholeDeviceBudget = ~std::uint64_t{0};

struct AllPairsOptions {
    std::int64_t k = 10;                   ///< neighbours per row (self excluded)
    int hist_bins = 2000;                  ///< even bins over [-1, 1], see histogram_binning.hpp
    double dup_threshold = 0.999;          ///< pairs with cosine >= this are listed
    std::int64_t max_dup_pairs = 1000000;  ///< list is cut (and flagged) beyond this many
    std::int64_t block_rows = 0;           ///< tile side in rows; 0 = chosen from memory_budget
    std::uint64_t memory_budget = 0;       ///< bytes the engine may hold; 0 = 1 GiB
    /// GPU bytes the CUDA engine may hold; 0 = memory_budget (or its 1 GiB default);
    /// kWholeDeviceBudget = all the device has free. Always capped at the device's free memory
    /// less a 256 MiB reserve.
    std::uint64_t device_memory_budget = 0;
    bool accumulate_row_sums = false;  ///< also sum cosines per row in the tiled pass (tests)
    /// Requested product precision; the backend reports what it ran in AllPairsResult::precision.
    /// The CPU backend computes exact float32 for every request.
    Precision precision = Precision::kAuto;
    std::optional<std::vector<double>>
        center;                    ///< [d] subtracted from every row before normalising
    MatrixSink* matrix = nullptr;  ///< optional receiver of every tile
    /// Optional: called from the calling thread (OpenMP thread 0 on the CPU) as tiles complete,
    /// with the tiles done and the total, so long runs can report progress. Must not throw.
    std::function<void(std::int64_t done, std::int64_t total)> progress;
};

struct AllPairsResult {
    std::int64_t rows = 0;
    std::int64_t k = 0;
    /// [rows, k] row-major: neighbours by descending cosine, ties by lower index; self excluded.
    /// Invalid rows, and slots beyond the number of other valid rows, hold index -1 and NaN.
    std::vector<std::int64_t> neighbor_index;
    std::vector<float> neighbor_sim;
    /// [rows] mean cosine to every other valid row, from the identity
    /// (x^_i . S - 1) / (n_valid - 1) with S = sum of normalised valid rows (float64). NaN if
    /// invalid.
    std::vector<float> row_mean;
    /// [rows] tiled sum of cosines to every other valid row (only with accumulate_row_sums).
    std::vector<double> row_sum_tiled;
    /// [hist_bins] counts of cos(x_i, x_j) over valid pairs i < j.
    std::vector<std::int64_t> histogram;
    /// sum over valid pairs i < j of cos^2 (accumulated exactly in fixed point).
    double pair_cos_sq_sum = 0.0;
    /// [d] S = sum of normalised valid rows, float64, summed in row order.
    std::vector<double> normalized_sum;
    std::vector<DuplicatePair> duplicates;  ///< sorted by (i, j)
    bool duplicates_truncated = false;
    std::int64_t valid_rows = 0;
    /// The product that ran. With a re-scored path (tf32, bf16, fp16) the neighbour similarities
    /// and duplicate cosines are float32 re-scores, while the histogram, cos^2 sum, tiled row sums
    /// and matrix sink see the fast cosines.
    PrecisionPath precision = PrecisionPath::kExact;
    double gflop = 0.0;    ///< GEMM work done (for the log and benchmarks)
    double seconds = 0.0;  ///< wall time of the all-pairs phase
    /// Where that time went, in order ("set-up", "load", "tiles", "finish"), when the engine
    /// measures it; for the log and the root attributes, never for results.
    std::vector<std::pair<std::string, double>> phase_seconds;
};

/// One process's part of the all-pairs work when several processes (MPI ranks, src/scaleout/)
/// share it. Every process runs the same plan and takes the work units whose ordinal p in the
/// one-process order has p % count == index: the CPU deals its GEMM grid tiles (whose side
/// depends on the row count only, so the deal is the same whatever block size or thread count a
/// process plans with); CUDA deals its tile pairs, planned with device_bytes on every process.
struct WorkShare {
    int index = 0;
    int count = 1;
    /// Device bytes every process plans with (the least Backend::all_pairs_plan_bytes of them
    /// all), so that their CUDA engines make the same plan; unset = the backend's own.
    std::optional<std::uint64_t> device_bytes;
};

/// The exact sums behind the AllPairsResult of one share, which make the shares of several
/// processes or engines add up to the one-process result bit for bit (engine/all_pairs_merge.hpp).
struct AllPairsPartial {
    unsigned __int128 cos_sq_fixed = 0;       ///< sum of cos^2 in units of 2^-24
    std::vector<long long> row_sums;          ///< [rows] (accumulate_row_sums) in units of 2^-32
    /// Pairs that reached the duplicate threshold: exact, or (CPU) at least max_dup_pairs + 1
    /// when more qualified than the list keeps, which is all a merge needs to know.
    unsigned long long duplicates_found = 0;
    /// On a re-scored path (tf32, bf16, fp16 with K' candidates), when re-scoring is deferred: the
    /// K' candidates of every row by the fast cosine, [rows, candidate_width] best first (empty
    /// slots hold kTopkEmptyIndex); the result's lists are then left padded.
    int candidate_width = 0;
    std::vector<std::int64_t> candidate_index;
    std::vector<float> candidate_sim;
};

/// The float64 sums of a streamed covariance (GramAccumulator::finish), shift s [d]:
/// S = sum_i (x_i - s)(x_i - s)^T, t = sum_i (x_i - s) over the n rows added.
struct GramSums {
    std::int64_t dims = 0;            ///< d
    std::int64_t n = 0;               ///< rows added
    std::vector<double> gram;         ///< [d, d] row-major S, symmetric (both triangles filled)
    std::vector<double> column_sums;  ///< [d] t
};

/// Streams row blocks into GramSums. Float32 rows are converted to float64 and shifted before
/// anything is summed, so a shift near the mean keeps S free of cancellation (the covariance is
/// S/n - (t/n)(t/n)^T). Blocks are summed in the order they are added; the result does not depend
/// on how rows are split into blocks beyond float64 rounding (t: one float64 sum per column in
/// row order, the same bits on every backend; S: a GEMM-like sum whose order is the backend's).
/// Made by Backend::gram_accumulator; must not outlive that backend. Not thread-safe.
class GramAccumulator {
  public:
    virtual ~GramAccumulator() = default;
    /// @brief Adds the rows r of block [rows, d] with valid_rows[r] != 0: y = x_r - s (float64),
    ///        S += y y^T, t += y, n += 1. Other rows are never read into the sums (they may hold
    ///        NaN). A valid row with a NaN or an infinity makes S and t non-finite.
    /// @param[in] block       [rows, d] row-major, any leading dimension; rows may be 0.
    /// @param[in] valid_rows  [rows] row mask (not null unless rows is 0).
    /// Synchronous: block and valid_rows may be reused when it returns.
    /// @throws ResourceError when memory runs out or the device fails.
    virtual void add(MatrixView<const float> block, const std::uint8_t* valid_rows) = 0;
    /// @brief The sums of every row added so far (host memory). Call once; the accumulator
    ///        holds nothing afterwards. @throws ResourceError when memory runs out.
    virtual GramSums finish() = 0;
};

/// A block of rows for a per-token pass: rows [first, first + rows.rows) of source, when the
/// caller names the table (a block of no named table is only its rows). When the backend holds
/// source (Backend::holds_table), rows.data may be null: the backend reads its own copy.
struct TableBlock {
    MatrixView<const float> rows;
    const RowSource* source = nullptr;
    std::int64_t first = 0;

    TableBlock(MatrixView<const float> r) : rows(r) {}  // NOLINT: any block of rows is one
    TableBlock(MatrixView<const float> r, const RowSource& s, std::int64_t f)
        : rows(r), source(&s), first(f) {}
};

class Backend {
  public:
    virtual ~Backend() = default;
    /// e.g. "cpu (OpenBLAS 0.3.21 SkylakeX, 2 threads)".
    virtual std::string name() const = 0;
    /// Does the set-up a first call would do (for CUDA: each device's context, stream and cuBLAS
    /// handle), so that a caller can overlap it with other work, e.g. reading the table. Optional;
    /// a backend is usable without it. @throws as the first call would.
    virtual void prepare() {}

    /// @brief Lets the backend keep a copy of source's rows where it computes, so that the calls
    ///        over source that follow (per-token blocks naming it, all_pairs, csls_neighbors,
    ///        extremeness) read that copy instead of source: on CUDA the table crosses to the
    ///        device once per job instead of once per pass. CUDA copies the raw rows into
    ///        device memory here, when they fit beside the largest plan the all-pairs engine
    ///        could make with `engine` (so holding never shrinks that plan); the CPU holds
    ///        nothing (its passes read host memory already). Replaces any table held before.
    /// @param[in] source  the table; the caller keeps it alive and unchanged until
    ///                    release_table() (TableHold, pipeline/table_hold.hpp, does both).
    /// @param[in] engine  the options all_pairs will get (k, precision, budgets, block_rows).
    /// @return whether the backend holds the table. @throws InputError when source fails to
    ///         read, ResourceError when the device fails.
    virtual bool hold_table(RowSource& source, const AllPairsOptions& engine) {
        (void)source;
        (void)engine;
        return false;
    }
    /// Frees the copy hold_table made, if any.
    virtual void release_table() {}
    /// Whether hold_table(source) made the copy the backend holds now.
    virtual bool holds_table(const RowSource& source) const {
        (void)source;
        return false;
    }
    /// The type the held copy keeps its values in: "float32", or "bfloat16" / "float16" where
    /// every value of the table is one (half the device memory; the passes still read the
    /// float32 bits of the source); empty when nothing is held.
    virtual std::string held_table_dtype() const { return {}; }

    /// Pass 1 over one block [rows, d]: norms[r] = ||x_r|| (float64 accumulation), finite[r] = 1
    /// when every element is finite; finite rows are added into column_sums[d] (float64, in row
    /// order, so the sum does not depend on the block size). Non-finite rows get norm NaN.
    virtual void row_norms_and_sums(const TableBlock& block, float* norms, std::uint8_t* finite,
                                    double* column_sums) = 0;

    /// Pass 2 over one block: out[p][r] = ||x_r - points[p]|| in float64, for each point [d]
    /// (the centroid, and the bias when there is one), from one read of the block: on CUDA one
    /// upload for all of them (none when the backend holds the block's table). out[p] has
    /// block.rows.rows entries.
    virtual void distances_to_points(const TableBlock& block,
                                     const std::vector<const double*>& points,
                                     const std::vector<float*>& out) = 0;

    /// The all-pairs cosine engine over every row of source; valid[V] masks out non-finite rows.
    /// Streams row blocks from source when the normalised table exceeds opt.memory_budget.
    virtual AllPairsResult all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                                     const AllPairsOptions& opt) = 0;

    /// @brief all_pairs over share's part of the work only, for a caller that adds the parts of
    ///        every process (src/scaleout/). The result holds the neighbour lists, histogram and
    ///        duplicates of the pairs this share computed; row means, S and valid_rows are whole;
    ///        partial receives the exact sums. A re-scored path leaves its candidates in partial
    ///        and its lists padded: the caller merges every share's candidates and calls
    ///        rescore_candidates once. opt.matrix receives the tiles this share computed (the
    ///        shares' tiles cover the matrix once), with the fast cosines on a re-scored path.
    /// @throws as all_pairs; UsageError when this backend cannot run a share (CUDA with several
    ///         --devices).
    virtual AllPairsResult all_pairs_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                           const AllPairsOptions& opt, const WorkShare& share,
                                           AllPairsPartial& partial) = 0;
    /// Device bytes this backend's all-pairs engine would plan with (CUDA: free memory less the
    /// reserve on the first device); 0 when it plans with host memory only.
    virtual std::uint64_t all_pairs_plan_bytes() { return 0; }
    /// @brief Re-scores merged candidates in float32 and writes each row's best k (the end of a
    ///        re-scored all_pairs whose shares deferred it).
    /// @param[in] cand_index  [rows, kc] candidates, best first by the fast cosine.
    /// @param[out] out_index, out_sim  [rows, k] padded with -1 / NaN.
    /// @throws ResourceError where the backend has no re-scored path (the CPU), or as all_pairs.
    virtual void rescore_candidates(RowSource& source, const std::vector<std::uint8_t>& valid,
                                    const std::optional<std::vector<double>>& center,
                                    const std::vector<std::int64_t>& cand_index, int kc,
                                    std::int64_t k, std::int64_t* out_index, float* out_sim);
    /// csls_neighbors over share's part of the work only: the lists of the pairs it computed,
    /// merged across shares by the same total order (score descending, ties to the lower index).
    virtual CslsNeighbors csls_neighbors_share(RowSource& source,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<float>& radius, std::int64_t k,
                                               const AllPairsOptions& opt,
                                               const WorkShare& share) = 0;

    /// @brief A GramAccumulator for rows of d columns and shift s (the covariance behind
    ///        principal_directions). CPU: cblas_dsyrk per block on the host. CUDA: S [d, d]
    ///        stays on the device (cublasDsyrk) until finish.
    /// @param[in] d      columns, >= 1.
    /// @param[in] shift  [d] s, subtracted from every row in float64.
    /// @throws ResourceError when S (d^2 doubles) and a row block do not fit in (device) memory,
    ///         naming the sizes.
    virtual std::unique_ptr<GramAccumulator> gram_accumulator(std::int64_t d,
                                                              const std::vector<double>& shift) = 0;

    /// @brief Eigendecomposition of a real symmetric matrix (divide and conquer: LAPACK dsyevd
    ///        on the CPU, cusolverDnDsyevd on CUDA), in float64.
    /// @param[in] d     order, >= 1.
    /// @param[in,out] a [d, d] symmetric, both triangles filled (row- or column-major alike). On
    ///                  return row k (row-major) is the unit eigenvector of eigenvalues[k], of
    ///                  either sign.
    /// @param[out] eigenvalues  [d] ascending.
    /// @throws ResourceError when memory runs out (naming the sizes) or the solver does not
    ///         converge.
    virtual void symmetric_eigen(std::int64_t d, std::vector<double>& a,
                                 std::vector<double>& eigenvalues) = 0;

    /// @brief Per-row top-k lists by CSLS score csls_score(cos(x_i, x_j), r_lo, r_hi) =
    ///        2 cos - (r_lo + r_hi) (geometry/csls.hpp), the second all-pairs pass of --csls.
    ///        CPU: geometry::csls_neighbors (the BLAS grid driver, bit-identical for any block
    ///        size, budget and thread count). CUDA: the all-pairs engine in its CSLS mode (exact
    ///        float32 SGEMM tiles turned into scores on the device and folded into the top-K
    ///        lists); its cosines differ from the CPU's by GEMM rounding, so lists agree except
    ///        at near-ties. Both: ties to the lower index, self excluded, -1/NaN padding.
    /// @param[in] source  the table [V, d] of float32 rows.
    /// @param[in] valid   [V] nonzero for rows taking part (finite rows), or empty for all rows.
    /// @param[in] radius  [V] r_i (csls_radius); finite on valid rows when two or more are valid.
    /// @param[in] k       neighbours per row, >= 1 (CUDA: min(k, valid rows - 1) <= 1024).
    /// @param[in] opt     block_rows and the budgets as for all_pairs (CPU: memory_budget; CUDA:
    ///                    device_memory_budget, else memory_budget); every other field is ignored:
    ///                    no centre, exact float32 whatever the precision, no histogram,
    ///                    duplicates, row sums, matrix or progress.
    /// @return [V, k] lists in original row order (CslsNeighbors, geometry/csls.hpp).
    /// @throws ResourceError on bad shapes, a non-finite radius of a valid row, a valid row
    ///         holding a non-finite value, or memory that does not fit (naming the sizes).
    virtual CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                                         const std::vector<float>& radius, std::int64_t k,
                                         const AllPairsOptions& opt) = 0;

    /// @brief Random-direction extremeness (geometry/extremeness.hpp): for M random unit
    ///        directions (random_unit_directions, always generated on the host, the same bits on
    ///        every backend) the valid rows with the largest and the smallest projection onto
    ///        each, ties to the lower index, winners moved to their lowest bit-identical copy,
    ///        and the per-row counts. CPU: random_direction_extremeness (bit-identical for any
    ///        block size and thread count). CUDA: cuBLAS SGEMM of centred row tiles against
    ///        direction tiles and a column-extremes kernel; projections differ from the CPU's
    ///        by GEMM rounding, so at near-ties the two may pick different rows.
    /// @param[in] source  the table [V, d], float32 rows, d >= 1.
    /// @param[in] valid   [V] nonzero for rows to consider, or empty for all rows.
    /// @param[in] opt     M, seed, optional centre [d] (subtracted in float64, rounded to
    ///                    float32), read size (stream.block_rows) and host threads.
    /// @throws UsageError if opt.directions is outside 1 .. 2^30 - 1; InputError if d == 0;
    ///         ResourceError on bad shapes or when the directions and a tile do not fit in
    ///         (device) memory, naming the sizes.
    virtual Extremeness extremeness(RowSource& source, const std::vector<std::uint8_t>& valid,
                                    const ExtremenessOptions& opt) = 0;
};

/// Number of usable CUDA devices; 0 when built without CUDA, without a driver or without a GPU,
/// and when the runtime cannot list the GPUs (never throws).
int cuda_device_count();

/// Why cuda_device_count() is 0, as one clause a user can act on ("no NVIDIA driver is loaded",
/// a driver older than this build's CUDA runtime with the version to update to,
/// CUDA_VISIBLE_DEVICES hiding every GPU, the runtime's error); "" when a device is present;
/// "built without CUDA" in a CPU-only build.
std::string cuda_no_device_reason();

/// True when this binary contains the CUDA backend.
bool cuda_built();

/// Why the CUDA backend cannot run on devices (the --devices list; empty = device 0), or "" when
/// it can: the first device whose compute capability has no code in this build
/// (kCudaArchitectures), named with its capability and the CMake option that adds it. "" when built
/// without CUDA.
std::string cuda_devices_unusable_reason(const std::vector<int>& devices);

/// The devices of `--devices all` (core/all_devices.hpp): every device that runs this build, of
/// the model most of them are, ascending; empty when there is none (and in a CPU-only build).
/// left_out, when not null, receives the clause naming the devices left out ("" when none is).
/// Creates no device context.
std::vector<int> cuda_all_devices(std::string* left_out = nullptr);

/// One CUDA device as `embgeom devices` reports it.
struct CudaDeviceReport {
    int id = 0;
    std::string name;                 ///< e.g. "NVIDIA H100 80GB HBM3"
    int major = 0, minor = 0;         ///< compute capability
    std::uint64_t total_bytes = 0;    ///< device memory
    std::uint64_t free_bytes = 0;     ///< free device memory once started; 0 when it did not start
    bool runs_build = false;          ///< this build has code for it (kCudaArchitectures)
    std::string start_error;          ///< "" when a context, a stream and a cuBLAS handle started
};

/// What the CUDA runtime says of this machine (`embgeom devices`).
struct CudaMachineReport {
    int runtime_version = 0;       ///< this build's CUDA runtime, 1000 * major + 10 * minor
    int driver_version = 0;        ///< the CUDA version the driver supports; 0: no driver
    std::string no_device_reason;  ///< cuda_no_device_reason(): "" when devices are listed
    std::string cublas;            ///< "cuBLAS 13.1.0" once loaded, else ""
    std::string cublas_error;      ///< why cuBLAS could not be loaded, else ""
    std::vector<CudaDeviceReport> devices;
    std::vector<int> all_devices;      ///< what `--devices all` would run on (cuda_all_devices)
    std::string all_devices_left_out;  ///< and the clause naming the devices it leaves out
};

/// Lists every device the runtime sees and starts each that runs this build (context, stream,
/// cuBLAS handle) to see that it can be used and how much memory it has free. Never throws for
/// what a device or driver answers: it is all in the report. In a CPU-only build: only
/// no_device_reason = "built without CUDA".
CudaMachineReport cuda_machine_report();

/// Makes the backend for kind. kAuto picks CUDA when cuda_device_count() > 0, the devices can
/// run this build's kernels and the backend starts (made and prepared: context, stream, cuBLAS),
/// else the CPU (and says why in `notice`). @throws ResourceError for kCuda without a usable
/// device.
std::unique_ptr<Backend> make_backend(BackendKind kind, int threads, std::string* notice = nullptr);
/// As above, with the CUDA devices of --devices: empty = the current device (device 0); with
/// several entries the all-pairs engine and the CSLS pass share their tile pairs between them (one
/// engine per entry; an id may repeat, which runs several engines on one device), every other
/// call runs on the first. Ignored by the CPU backend. @throws ResourceError, naming the id and the
/// device count, for an id that is not a usable device.
std::unique_ptr<Backend> make_backend(BackendKind kind, int threads,
                                      const std::vector<int>& devices,
                                      std::string* notice = nullptr);

/// The checks of make_backend that create no device context (CUDA built in, a usable device for
/// kCuda, the --devices ids exist): quick, so a job fails on them before it reads its table and
/// may then create the backend while it reads. @throws as make_backend.
void check_backend_request(BackendKind kind, const std::vector<int>& devices);

/// CPU backend (BLAS + OpenMP); threads = 0 uses every core.
std::unique_ptr<Backend> make_cpu_backend(int threads);
/// CUDA backend; throws NotBuiltWithCuda in CPU-only builds.
std::unique_ptr<Backend> make_cuda_backend();
/// CUDA backend on devices (see make_backend); empty = make_cuda_backend(). @throws
/// NotBuiltWithCuda in CPU-only builds, ResourceError for an id that is not a usable device.
std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>& devices);

}  // namespace embgeom
