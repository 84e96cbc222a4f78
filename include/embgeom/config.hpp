#pragma once
// The resolved configuration of one `embgeom analyze` job. Filled by the CLI (flags over config
// file), validated once, and printed back into the results as the root attribute "config".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace embgeom {

enum class BackendKind { kAuto, kCpu, kCuda };
enum class MatrixDtype { kFloat16, kFloat32 };
/// Requested precision of the all-pairs product (--precision; docs/output-schema.md, "Precision").
/// kAuto: the fastest mode that keeps the exact top-K; kExact: float32 GEMM; kTf32, kBf16, kFp16:
/// tensor-core products. Only the CUDA backend has fast modes; the CPU computes exact float32.
enum class Precision { kAuto, kExact, kTf32, kBf16, kFp16 };

struct AnalyzeConfig {
    std::string input;                   ///< HDF5 file with the table
    std::string dataset;                 ///< 2-D dataset [V, d] in `input`
    std::string output;                  ///< HDF5 file to create (atomically)
    std::optional<std::string> vocab_dataset;  ///< string dataset [V] in `input`
    std::optional<std::string> vocab_file;     ///< text file, one token per line
    std::optional<std::string> bias_dataset;   ///< 1-D dataset [d] in `input`
    std::int64_t topk = 10;              ///< neighbours per token
    std::int64_t outliers = 100;         ///< rows per outlier list
    BackendKind backend = BackendKind::kAuto;
    Precision precision = Precision::kAuto;  ///< product precision of the all-pairs engine
    int threads = 0;                     ///< 0 = all cores
    /// CUDA devices (--devices 0,1): empty = device 0. Several entries share the all-pairs tile
    /// work with results identical to one device; an id may repeat (several engines on one GPU).
    std::vector<int> devices;
    /// --devices all: every GPU of the model most of the machine's usable GPUs are
    /// (cuda_all_devices), chosen when the job starts; `devices` is then empty.
    bool all_devices = false;
    std::uint64_t memory_budget = 0;     ///< host bytes; 0 = half of physical memory
    /// GPU bytes the CUDA backend may hold; 0 = the device's free memory (kWholeDeviceBudget).
    /// Always capped at the device's free memory less 256 MiB.
    std::uint64_t device_memory_budget = 0;
    std::int64_t block_rows = 0;         ///< rows per streamed block / tile side; 0 = from budget
    bool all_pairs = true;               ///< run the V x V cosine engine
    int hist_bins = 2000;
    double dup_threshold = 0.999;
    std::int64_t max_dup_pairs = 1000000;
    bool center = false;                 ///< also analyse x - mu
    bool write_matrix = false;
    MatrixDtype matrix_dtype = MatrixDtype::kFloat32;
    int matrix_gzip = 0;                 ///< gzip level of /cosine/matrix (0 = uncompressed)
    std::uint64_t max_matrix_bytes = 64ull << 30;

    // Geometry of the cloud (each stage off unless asked for; see docs/output-schema.md).
    bool principal = false;              ///< covariance spectrum, IsoScore, rogue dimensions
    std::int64_t rogue_top = 20;         ///< dimensions listed by contribution to the mean cosine
    std::int64_t remove_top = 0;         ///< all-but-the-top: drop mean + top D PCs, recompute
    bool undertrained = false;           ///< Land & Bartolo under-trained token indicator
    std::vector<std::int64_t> reference_ids;  ///< known-unused tokens (indicator reference set)
    std::string reference_range;         ///< "A:B" = ids [A, B)
    std::string reference_regex;         ///< tokens whose string matches (ECMAScript regex)
    double candidate_quantile = 0.02;    ///< indicator threshold = this quantile
    std::int64_t simplex = 0;            ///< K simplex vertices by SPA (0 = off)
    std::vector<std::int64_t> simplex_plane;  ///< three token ids spanning the plane (default: first three vertices)
    std::int64_t simplex_directions = 10000;  ///< random directions for the extremeness counts
    std::int64_t corner_tokens = 20;     ///< tokens listed per simplex corner
    bool csls = false;                   ///< CSLS-adjusted neighbour lists (second pass)
    std::vector<std::string> null_models;  ///< "isotropic", "matched": same pipeline on Gaussian tables
    std::uint64_t seed = 0;              ///< seed of random directions and null tables
};

const char* to_string(BackendKind k);
const char* to_string(MatrixDtype k);
/// "auto", "exact", "tf32", "bf16", "fp16": the --precision values.
const char* to_string(Precision p);

}  // namespace embgeom
