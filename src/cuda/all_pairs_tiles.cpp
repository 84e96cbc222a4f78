#include <algorithm>
#include <vector>

#include "csls_scores.cuh"
#include "cuda/all_pairs_engine.hpp"
#include "cuda/cuda_check.hpp"
#include "mask_invalid.cuh"
#include "mirror_upper.cuh"
#include "rescore_candidates.cuh"
#include "scale_tile.cuh"
#include "tile_col_fold.cuh"
#include "tile_row_fold.cuh"
#include "transpose.cuh"

namespace embgeom {

namespace kn = kernels;

void AllPairsEngine::fold_rows(const float* tile, std::int64_t rows, std::int64_t cols,
                               std::int64_t row0, std::int64_t col0,
                               const kn::TilePairStats* pairs) {
    // Neighbour lists, row sums and (for the rows of I) the pair statistics from one read of the
    // tile.
    kn::launch_tile_row_fold(
        tile, cols, rows, cols, row0, col0, valid_dev_.data(),
        kc_ > 0 ? top_sim_dev_.data() : nullptr, kc_ > 0 ? top_idx_dev_.data() : nullptr, kc_,
        opt_.accumulate_row_sums ? row_sum_dev_.data() : nullptr, pairs, stream_);
    EMBGEOM_CHECK_LAUNCH(stream_);
}

// C = the tile's cosines in the path's precision. Every path writes float32 C, so the fold, the
// sink and the row means do not change with the precision.
void AllPairsEngine::tile_product(std::int64_t i0, std::int64_t ti, const float* a,
                                  const std::uint16_t* a16, std::int64_t j0, std::int64_t tj,
                                  const float* b, const std::uint16_t* b16) {
    // Row-major C[ti x tj] = A B^T is column-major C^T = B A^T: swap the operands (faiss).
    const float one = 1.0f, zero = 0.0f;
    const int m = static_cast<int>(ti), n = static_cast<int>(tj), k = static_cast<int>(d_);
    if (k == 0) {
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(tile_dev_.data(), 0, sizeof(float) * ti * tj, stream_));
        return;
    }
    switch (path_) {
        case PrecisionPath::kExact:
            EMBGEOM_CUBLAS_TRY(cublas_api().cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k,
                                                        &one, b, k, a, k, &zero, tile_dev_.data(),
                                                        n));
            return;
        case PrecisionPath::kTf32:
            EMBGEOM_CUBLAS_TRY(cublas_api().cublasGemmEx(
                cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b, CUDA_R_32F, k, a, CUDA_R_32F,
                k, &zero, tile_dev_.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F_FAST_TF32,
                CUBLAS_GEMM_DEFAULT));
            return;
        default:
            break;
    }
    // 16-bit inputs, float32 accumulation and output. For the raw paths the products of stored
    // values are exact and the norms are applied afterwards.
    const bool bf16 = path_ == PrecisionPath::kBf16 || path_ == PrecisionPath::kBf16Raw;
    const cudaDataType type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    EMBGEOM_CUBLAS_TRY(cublas_api().cublasGemmEx(
        cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b16, type, k, a16, type, k, &zero,
        tile_dev_.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (engine::is_raw16(path_)) {
        kn::launch_scale_tile(tile_dev_.data(), tj, ti, tj, inv_norm_dev_.data() + i0,
                              inv_norm_dev_.data() + j0, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
}

void AllPairsEngine::process_tile(std::int64_t i0, std::int64_t ti, const float* a,
                                  const std::uint16_t* a16, std::int64_t j0, std::int64_t tj,
                                  const float* b, const std::uint16_t* b16) {
    tile_product(i0, ti, a, a16, j0, tj, b, b16);
    gflop_ +=
        2.0 * static_cast<double>(ti) * static_cast<double>(tj) * static_cast<double>(d_) * 1e-9;

    // Each pair gets one float, used by both of its rows, the histogram and the sink: the upper
    // triangle of a diagonal tile (mirrored down), and C itself on an off-diagonal tile, where
    // the rows of J read it from an exact transpose.
    if (i0 == j0) {
        kn::launch_mirror_upper(tile_dev_.data(), tj, ti, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    // CSLS: scores with the lower index's radius first keep the tile symmetric, so both rows of
    // a pair (and the transpose below) see one float per pair, as on the CPU.
    if (csls_radius_) {
        kn::launch_csls_scores(tile_dev_.data(), tj, ti, tj, i0, j0, radius_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    // The histogram, cos^2 and duplicate counts of the pairs (none in CSLS mode) are counted by
    // the fold of the rows of I, in the same read of the tile as their lists.
    kn::TilePairStats pairs;
    if (!csls_radius_) {
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(scalars_dev_.data(), 0, scalars_dev_.bytes(), stream_));
        pairs.hist_bins = opt_.hist_bins;
        pairs.hist_scale = 0.5f * static_cast<float>(opt_.hist_bins);
        pairs.hist = hist_dev_.data();
        pairs.cos_sq_fixed = scalars_dev_.data();
        pairs.dup_min = dup_scan_min_;
        pairs.row_dup_count = dup_count_dev_.data();
        pairs.dup_total = scalars_dev_.data() + 1;
    }
    fold_rows(tile_dev_.data(), ti, tj, i0, j0, csls_radius_ ? nullptr : &pairs);
    // The rows of J: their lists and sums fold the columns of C in place (kernels/tile_col_fold);
    // lists longer than its registers hold fold an exact transpose instead.
    if (i0 != j0 && (kc_ > 0 || opt_.accumulate_row_sums)) {
        if (kc_ <= kn::kColFoldMaxK) {
            kn::launch_tile_col_fold(
                tile_dev_.data(), tj, ti, tj, i0, j0, valid_dev_.data(),
                kc_ > 0 ? top_sim_dev_.data() : nullptr, kc_ > 0 ? top_idx_dev_.data() : nullptr,
                kc_, opt_.accumulate_row_sums ? row_sum_dev_.data() : nullptr, stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
        } else {
            EMBGEOM_EXPECTS(tile_t_dev_.data() != nullptr, "the plan holds a transposed tile");
            kn::launch_transpose(tile_dev_.data(), ti, tj, tj, tile_t_dev_.data(), ti, stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
            fold_rows(tile_t_dev_.data(), tj, ti, j0, i0, nullptr);
        }
    }
    if (csls_radius_) return;  // no histogram, cos^2, duplicates or matrix of scores

    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(scalars_host_.data(), scalars_dev_.data(),
                                     scalars_dev_.bytes(), cudaMemcpyDeviceToHost, stream_));
    sync();
    cos_sq_fixed_ += scalars_host_.data()[0];
    // When re-scoring, tile_dups counts candidates; collect_duplicates counts the pairs that pass.
    const unsigned long long tile_dups = scalars_host_.data()[1];
    const bool rescored = engine::is_rescored(path_);
    if (!rescored) dup_total_ += tile_dups;
    if (tile_dups > 0 && (opt_.max_dup_pairs > 0 || rescored))
        collect_duplicates(i0, ti, a, j0, tj, b, static_cast<long long>(tile_dups));

    if (opt_.matrix) {
        kn::launch_mask_invalid(tile_dev_.data(), tj, ti, tj, i0, j0, valid_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(sink_tile_.data(), tile_dev_.data(),
                                         sizeof(float) * ti * tj, cudaMemcpyDeviceToHost, stream_));
        sync();
        opt_.matrix->write_tile(i0, j0, MatrixView<const float>(sink_tile_.data(), ti, tj, tj));
    }
}

// Keeps, over all tiles, the max_dup_pairs smallest pairs by (i, j). Within a tile the kernel
// numbers pairs in (i, j) order, so only the tile's first max_dup_pairs can survive. When
// re-scoring, the kernel's pairs are candidates: they are re-scored from the normalised rows (a,
// b) and read in order until max_dup_pairs + 1 pass, one more than can be kept, which is enough
// for dup_total_ > max_dup_pairs to say whether the list was cut.
void AllPairsEngine::collect_duplicates(std::int64_t i0, std::int64_t ti, const float* a,
                                        std::int64_t j0, std::int64_t tj, const float* b,
                                        long long tile_total) {
    std::vector<long long> counts(ti), offsets(ti);
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(counts.data(), dup_count_dev_.data(), sizeof(long long) * ti,
                                     cudaMemcpyDeviceToHost, stream_));
    sync();
    long long running = 0;
    for (std::int64_t r = 0; r < ti; ++r) {
        offsets[r] = running;
        running += counts[r];
    }
    EMBGEOM_EXPECTS(running == tile_total, "duplicate counts of a tile add up");
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dup_offset_dev_.data(), offsets.data(), sizeof(long long) * ti,
                                     cudaMemcpyHostToDevice, stream_));

    const bool rescored = engine::is_rescored(path_);
    const long long wanted =
        rescored ? tile_total : std::min<long long>(tile_total, opt_.max_dup_pairs);
    long long passed = 0;
    std::vector<kn::TilePair> got;
    for (long long first = 0; first < wanted && passed <= opt_.max_dup_pairs;
         first += pair_capacity_) {
        const long long count = std::min<long long>(pair_capacity_, wanted - first);
        kn::launch_tile_dup_write(tile_dev_.data(), tj, ti, tj, i0, j0, valid_dev_.data(),
                                  dup_scan_min_, dup_count_dev_.data(), dup_offset_dev_.data(),
                                  first, count, pairs_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
        if (rescored) {
            kn::launch_rescore_pairs(a, i0, b, j0, d_, d_, pairs_dev_.data(), count, stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
        }
        got.resize(count);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(got.data(), pairs_dev_.data(),
                                         sizeof(kn::TilePair) * count, cudaMemcpyDeviceToHost,
                                         stream_));
        sync();
        for (const kn::TilePair& p : got) {
            if (rescored && !(p.cosine >= dup_min_)) continue;
            if (passed++ <= opt_.max_dup_pairs)
                duplicates_.push_back(DuplicatePair{p.i, p.j, p.cosine});
        }
    }
    if (rescored) dup_total_ += static_cast<unsigned long long>(passed);

    const auto by_pair = [](const DuplicatePair& x, const DuplicatePair& y) {
        return x.i != y.i ? x.i < y.i : x.j < y.j;
    };
    const auto keep = static_cast<std::size_t>(opt_.max_dup_pairs);
    if (duplicates_.size() > keep) {
        std::nth_element(duplicates_.begin(), duplicates_.begin() + keep, duplicates_.end(),
                         by_pair);
        duplicates_.resize(keep);
    }
}

}  // namespace embgeom
