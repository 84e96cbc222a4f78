#pragma once
// The CUDA all-pairs cosine engine: the CPU engine's semantics (see Backend::all_pairs) with the
// tile product on cuBLAS and the fold on the device.
//
// Flow: pass 0 reads the table in row blocks, normalises each block on the device and adds it (in
// row order, float64) into S. If the normalised table fits the device budget it stays resident;
// otherwise row blocks are read again for every tile that needs them. Every block is read ahead,
// in load order, by a BlockPrefetcher thread into two pinned buffers (core/block_prefetcher.hpp),
// so reading the source overlaps the copies and the tiles; when the backend holds the table on
// the device (Backend::hold_table) blocks are copied from there instead, and nothing is read.
// Tiles (I <= J) of side T are C = X^_I X^_J^T (cublasSgemm on the exact path); each tile is
// folded on the device into the per-row top-K (rows of I from the rows of C, rows of J from its
// columns when I != J: kernels/tile_col_fold.cu reads them in place, lists over 128 slots fold an
// exact transpose),
// the histogram, the fixed-point sum of cos^2 and the duplicate list (the fold of the rows of I
// counts these in the same read of C as their lists), and optionally copied to the matrix sink. The
// work is synchronous per tile (one compute stream); the per-tile host steps are small (two
// counters, and the duplicate pairs when there are any).
//
// Precision (AllPairsOptions::precision, policy in src/engine/precision_policy.hpp): only the
// tile product changes, and C stays float32, so every fold kernel, S, the row means and the sink
// are the same for every path. Pass 0 also checks, as it loads the raw rows, whether every value
// is exactly a bfloat16/float16 value (and, resident, keeps a 16-bit copy of the raw rows, encoded
// block by block by engine::Raw16Tracker); the policy then picks the path. Raw paths multiply the
// 16-bit raw rows (cublasGemmEx, float32 compute) and scale C by the inverse norms. Fast paths
// multiply the normalised rows in tf32 (CUBLAS_COMPUTE_32F_FAST_TF32) or as a 16-bit copy, keep
// K' candidates per row in the device lists, and re-score them and the near-duplicate candidates
// from the resident normalised rows (kernels/rescore_candidates.cu); a warp per row then picks
// each row's top K from them (kernels/select_topk.cu, bit for bit engine::select_rescored_topk,
// which the host runs instead for lists over 128 slots). Re-scoring needs the table resident; a
// streamed plan runs exact or a raw path.
//
// Memory: the plan (tile side, resident or streamed, which extras) is engine::choose_device_plan
// (src/engine/device_memory_plan.hpp, host arithmetic tested in CI). The engine itself is
// all_pairs_engine.{hpp,cpp} (plan, buffers, loads, passes), all_pairs_tiles.cpp (one tile pair)
// and all_pairs_finish.cpp (results back to the host).
//
// CSLS mode (cuda_csls_neighbors): the same engine ranks 2 cos - r_i - r_j instead of cos.
#include <cstdint>
#include <optional>
#include <vector>

#include "cuda/cuda_resources.hpp"
#include "cuda/device_table.hpp"
#include "embgeom/backend.hpp"

namespace embgeom {

// held, in the calls below: the raw rows of source already on the engine's device
// (Backend::hold_table), which the engine then copies from instead of reading source; null reads
// source (through the BlockPrefetcher).

/// See Backend::all_pairs. Device memory held is at most min(opt.memory_budget (0 = 1 GiB),
/// free device memory - 256 MiB); a fast request whose extras (16-bit copy, K' lists) do not fit
/// runs a cheaper path, reported in AllPairsResult::precision. @throws ResourceError naming the
/// sizes when even the smallest exact tiling does not fit, or when min(k, valid rows - 1) exceeds
/// the kernel's limit (1024).
AllPairsResult cuda_all_pairs(CudaResources& res, RowSource& source,
                              const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt,
                              const DeviceTable* held = nullptr);

/// @brief See Backend::csls_neighbors: the engine above in its CSLS mode. The plan, pass 0 and
///        the tile loop are the cosine engine's on the exact path (cublasSgemm of the normalised
///        rows, whatever opt.precision asks); each tile C, mirrored when diagonal, becomes
///        s_ij = csls_score(C_ij, r_min(i,j), r_max(i,j)) (kernels/csls_scores.cu, the host
///        expression's bits) and is folded by the top-K kernel into the lists of the rows of I and,
///        through the columns of the tile, of J. The histogram, cos^2 sum, duplicates, row sums and
///        matrix sink are skipped. Lists are kept per original row, so they come back in row
///        order, padded with -1/NaN beyond min(k, valid rows - 1).
///        Device memory: as cuda_all_pairs on the exact path with k lists, plus 4 V bytes of
///        radii, within the same budget (opt.device_memory_budget, else opt.memory_budget, else
///        1 GiB; at most free device memory - 256 MiB);
///        CslsNeighbors::resident says whether the table stayed on the device.
/// @throws ResourceError on bad shapes or a non-finite radius of a valid row (as the CPU), a
///         valid row holding non-finite values, min(k, valid rows - 1) > 1024, or naming the
///         sizes when even the smallest tiling does not fit.
CslsNeighbors cuda_csls_neighbors(CudaResources& res, RowSource& source,
                                  const std::vector<std::uint8_t>& valid,
                                  const std::vector<float>& radius, std::int64_t k,
                                  const AllPairsOptions& opt, const DeviceTable* held = nullptr);

/// The device budget the engine plans within before the device's own limit: opt's
/// device_memory_budget, else its memory_budget, else 1 GiB.
std::uint64_t all_pairs_device_budget(const AllPairsOptions& opt);

/// Device bytes of the largest plan the engine could make for a rows x cols table with opt
/// (every row valid, the table resident, the 16-bit copy and the K' lists where opt's precision
/// may use them, the largest tile side): what a held table must leave free (hold_table).
std::uint64_t all_pairs_largest_plan_bytes(std::int64_t rows, std::int64_t cols,
                                           const AllPairsOptions& opt);

// Hooks of the multi-device driver (cuda_multi_device.hpp). With the defaults the engine runs
// exactly as cuda_all_pairs.

/// One engine's share of the work.
struct EngineShare {
    /// The engine folds the upper-triangle tile pairs whose ordinal p in the one-device order
    /// (block row by block row) has p % count == index; pass 0 (S, row means) always runs whole.
    int index = 0;
    int count = 1;
    /// Device bytes the plan may use instead of free device memory less the reserve, so that
    /// every engine makes the same plan (the same tile side) whatever the others hold.
    std::optional<std::uint64_t> usable_bytes;
    /// True: a re-scored path (tf32, bf16, fp16 with K' candidates) leaves its candidate lists in
    /// AllPairsPartial as the fast product ranked them, and the result's lists padded, for the
    /// caller to merge across engines and re-score once: the best K' of the union of every
    /// engine's candidates are the one engine's K', so the lists re-score to the same bits.
    bool defer_rescore = false;
};

/// cuda_csls_neighbors over share's tile pairs only (for cuda_multi_device_csls_neighbors): the
/// lists of the pairs this engine folded. mask is [V] (the caller has checked the inputs).
CslsNeighbors cuda_csls_neighbors_share(CudaResources& res, RowSource& source,
                                        const std::vector<std::uint8_t>& mask,
                                        const std::vector<float>& radius, std::int64_t k,
                                        const AllPairsOptions& opt, const EngineShare& share,
                                        const DeviceTable* held = nullptr);

/// Free device memory of res's device less the all-pairs engine's reserve (256 MiB).
std::uint64_t all_pairs_usable_device_bytes(CudaResources& res);

/// cuda_all_pairs over share's tile pairs only. opt.progress gets (tiles this engine has done,
/// tile pairs of the whole triangle). partial, when given, receives the exact sums.
AllPairsResult cuda_all_pairs_share(CudaResources& res, RowSource& source,
                                    const std::vector<std::uint8_t>& valid,
                                    const AllPairsOptions& opt, const EngineShare& share,
                                    AllPairsPartial* partial, const DeviceTable* held = nullptr);

}  // namespace embgeom
