#pragma once
// The --precision policy of the all-pairs engine: which product runs for a request, and the error
// bounds the fast products are held to. Host-only; the CUDA engine asks it, the CPU tests check it.
//
// Why raw 16-bit rows are exact: a bfloat16 (8 significant bits) or float16 (11 bits) times another
// of the same type has at most 22 significant bits, so the tensor cores' products are exact in
// float32 and only the float32 sums round, as in SGEMM. The cosine is then C_ij / (|x_i| |x_j|),
// with the norms applied after the product. This needs every value of the valid rows to be exactly
// a value of that type, and, for bfloat16, within [2^-60, 2^50] in magnitude (or zero) so that
// products stay normal float32 numbers (>= 2^-120) and no sum of up to 2^28 products overflows.
// The CUDA engine checks this on the device as it loads the rows, which is why the stored dtype
// does not have to be passed down: a table stored as float16 or bfloat16 passes the check.
//
// Why fast float32 modes re-score: tf32/bf16/fp16 products of normalised rows are off by at most
// fast_error_bound() per cosine. Keeping K' = min(4K, 1024, n_valid - 1) candidates per row by the
// fast cosine and re-scoring them in float32 misses an exact top-K neighbour only when at least
// K' - K + 1 other tokens, none of them in the exact top K, have exact cosines within
// 2 * fast_error_bound() below the K-th neighbour's: a true near-tie.
#include <cstdint>

#include "embgeom/backend.hpp"

namespace embgeom::engine {

/// Candidates per row the device top-K kernel can keep (kernels/tile_topk.cuh, kTopkMaxK).
constexpr std::int64_t kMaxCandidates = 1024;

/// Smallest and largest non-zero magnitude of a bfloat16 value the raw product takes (see above).
constexpr double kRawBf16MinMagnitude = 0x1p-60;
constexpr double kRawBf16MaxMagnitude = 0x1p50;

/// What the device check found over the valid rows of a table, as read (before normalising).
struct RawExactness {
    bool bf16 = false;  ///< every value is a bfloat16 value in the raw product's range, or zero
    bool fp16 = false;  ///< every value is a float16 value (subnormals included)
};

/// What the engine's memory plan affords beyond the exact engine.
struct PrecisionCapacity {
    bool copy16 = false;      ///< a 16-bit copy of the rows and the per-row inverse norms
    bool candidates = false;  ///< K' lists per row and the normalised table resident, to re-score
};

/// True for kTf32, kBf16, kFp16 (fast products of the normalised rows, candidates re-scored).
bool is_rescored(PrecisionPath p);
/// True for kBf16Raw, kFp16Raw.
bool is_raw16(PrecisionPath p);
/// True for every path whose GEMM inputs are 16-bit (bf16, fp16 and both raw paths).
bool uses_copy16(PrecisionPath p);

/// Whether a request could run on a 16-bit copy / with re-scoring: what the memory plan tries to
/// afford first.
bool may_use_copy16(Precision request);
bool may_rescore(Precision request);

/// K' = min(4k, kMaxCandidates, n_valid - 1), or 0 when n_valid < 2 or k < 1.
std::int64_t candidate_count(std::int64_t k, std::int64_t n_valid);

/// The policy (docs/output-schema.md, "Precision"):
/// - exact -> kExact;
/// - auto -> kBf16Raw if table.bf16, else kFp16Raw if table.fp16 (both need cap.copy16), else kTf32
///   (needs cap.candidates, and K' >= min(2k, n_valid - 1) so the guarantee above holds), else
///   kExact;
/// - tf32 -> kTf32 if cap.candidates, else kExact;
/// - bf16 -> kBf16Raw if table.bf16 and cap.copy16, else kBf16 if cap.copy16 and cap.candidates,
///   else kExact (fp16 likewise with table.fp16).
/// @param[in] k neighbours asked for; @param[in] n_valid valid rows of the table.
PrecisionPath resolve_precision(Precision request, RawExactness table, PrecisionCapacity cap,
                                std::int64_t k, std::int64_t n_valid);

/// Largest |fast - float32| of one cosine of two unit vectors of dimension d: the rounding of the
/// GEMM inputs, 2e + e^2 with e = 2^-10 (tf32, which the tensor cores may truncate to), 2^-8
/// (bf16) or 2^-11 (fp16, round to nearest), plus 2 sqrt(d) 2^-25 for float16 subnormals. The
/// float32 sums round as in SGEMM in every mode and are not counted. 0 for kExact and raw paths.
double fast_error_bound(PrecisionPath p, std::int64_t d);

/// Fast cosines >= dup_threshold - this are re-scored for the near-duplicate list: 4 x the bound.
double duplicate_margin(PrecisionPath p, std::int64_t d);

/// 16-bit encoding of a block of raw rows.
enum class Raw16Format { kNone, kBf16, kFp16 };

/// Chooses, block by block in row order, how a resident table's raw rows are encoded while pass 0
/// loads them (the raw values are gone once the block is normalised in place). A block is written
/// as bfloat16 while every block so far is bfloat16-exact, then as float16 while every block so
/// far is float16-exact. If the whole table ends float16-exact but not bfloat16-exact, the
/// bfloat16 prefix is re-encoded as float16, which is exact since its values are both.
class Raw16Tracker {
  public:
    Raw16Tracker(bool allow_bf16, bool allow_fp16)
        : allow_bf16_(allow_bf16), allow_fp16_(allow_fp16) {}

    /// so_far: the check over every row up to the end of this block. Blocks must come in order,
    /// from row 0, without gaps. @return the encoding to write this block in.
    Raw16Format next_block(std::int64_t first, std::int64_t count, RawExactness so_far);

    /// The encoding of the whole table after the last block (kNone: no raw path).
    Raw16Format final_format() const { return format_of(so_far_); }

    /// Rows [0, this) were written as bfloat16 and must be re-encoded as float16 (only when
    /// final_format() is kFp16).
    std::int64_t bf16_prefix_to_reencode() const {
        return final_format() == Raw16Format::kFp16 ? bf16_rows_ : 0;
    }

  private:
    Raw16Format format_of(RawExactness e) const;

    bool allow_bf16_, allow_fp16_;
    RawExactness so_far_{true, true};
    std::int64_t next_row_ = 0;
    std::int64_t bf16_rows_ = 0;
};

/// The raw encoding a path reads (kNone for paths that are not raw).
Raw16Format raw_format(PrecisionPath p);

}  // namespace embgeom::engine
