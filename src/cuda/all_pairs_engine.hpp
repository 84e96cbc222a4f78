#pragma once
// The CUDA all-pairs engine's state and steps (see cuda_all_pairs.hpp for what it computes):
// all_pairs_engine.cpp plans, allocates, loads the rows and runs the passes, all_pairs_tiles.cpp
// turns one tile pair into its product and folds it, all_pairs_finish.cpp brings the results
// back. Internal to src/cuda.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/block_prefetcher.hpp"
#include "cuda/cuda_all_pairs.hpp"
#include "cuda/cuda_libraries.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/pinned_allocator.hpp"
#include "embgeom/errors.hpp"
#include "engine/precision_policy.hpp"
#include "tile_pairs.cuh"

namespace embgeom {

// CSLS mode (csls_radius given): the same plan, pass 0 and tile loop; each exact tile of cosines
// becomes CSLS scores (kernels/csls_scores.cu) before the top-K fold, and nothing else is folded.
// The caller passes options asking for exact float32 and no extras (see cuda_csls_neighbors).
class AllPairsEngine {
  public:
    AllPairsEngine(CudaResources& res, RowSource& source, const std::vector<std::uint8_t>& valid,
                   const AllPairsOptions& opt, const DeviceTable* held,
                   const std::vector<float>* csls_radius = nullptr, const EngineShare& share = {},
                   AllPairsPartial* partial = nullptr)
        : source_(source),
          held_(held),
          valid_(valid),
          opt_(opt),
          csls_radius_(csls_radius),
          share_(share),
          partial_(partial),
          n_(source.rows()),
          d_(source.cols()),
          stream_(res.compute_stream()),
          cublas_(res.cublas()) {
        if (held_)
            EMBGEOM_EXPECTS(
                held_->rows() == n_ && held_->cols() == d_ && held_->device() == res.device(),
                "the held table is the source's, on the engine's device");
    }

    AllPairsResult run();
    /// The plan held the whole normalised table on the device (after run()).
    bool resident() const { return resident_; }

  private:
    void plan_memory();
    void allocate();
    void load_block(std::int64_t first, std::int64_t count, float* dst, bool check,
                    engine::Raw16Tracker* tracker, engine::Raw16Format format,
                    std::uint16_t* dst16);
    engine::RawExactness read_exactness();
    void resolve_path(const engine::Raw16Tracker* tracker);
    void allocate_lists();
    void tile_product(std::int64_t i0, std::int64_t ti, const float* a, const std::uint16_t* a16,
                      std::int64_t j0, std::int64_t tj, const float* b, const std::uint16_t* b16);
    void process_tile(std::int64_t i0, std::int64_t ti, const float* a, const std::uint16_t* a16,
                      std::int64_t j0, std::int64_t tj, const float* b, const std::uint16_t* b16);
    void fold_rows(const float* tile, std::int64_t rows, std::int64_t cols, std::int64_t row0,
                   std::int64_t col0, const kernels::TilePairStats* pairs);
    void collect_duplicates(std::int64_t i0, std::int64_t ti, const float* a, std::int64_t j0,
                            std::int64_t tj, const float* b, long long tile_total);
    void finish(AllPairsResult& out);
    void sync() { EMBGEOM_CUDA_TRY(cudaStreamSynchronize(stream_)); }
    bool owns(std::int64_t tile_pair) const { return tile_pair % share_.count == share_.index; }

    RowSource& source_;
    const DeviceTable* held_;  // source's raw rows on this device, or null: read source
    const std::vector<std::uint8_t>& valid_;
    const AllPairsOptions& opt_;
    const std::vector<float>* csls_radius_;  // [n] in CSLS mode, else null
    const EngineShare share_;
    AllPairsPartial* partial_;
    const std::int64_t n_, d_;
    cudaStream_t stream_;
    cublasHandle_t cublas_;

    std::int64_t n_valid_ = 0;
    int k_ = 0;   // neighbours in the result: min(opt.k, n_valid - 1)
    int kc_ = 0;  // width of the device lists: K' when the path re-scores, else k_
    std::int64_t tile_ = 0;
    bool resident_ = false;
    bool copy16_ = false;      // the plan holds a 16-bit copy of the rows (+ inverse norms)
    bool candidates_ = false;  // the plan affords K' lists (and is resident, for re-scoring)
    bool transposed_ = false;  // the plan holds a transposed tile (lists over kColFoldMaxK)
    bool check_raw_ = false;   // pass 0 checks whether the raw rows are exact in 16 bits
    PrecisionPath path_ = PrecisionPath::kExact;
    std::int64_t pair_capacity_ = 0;
    float dup_min_ = 0.0f;       // a pair is a duplicate when its (re-scored) cosine is >= this
    float dup_scan_min_ = 0.0f;  // tile_pairs' test: dup_min_ less the margin when re-scoring

    DeviceBuffer<std::uint8_t> valid_dev_, zero_row_dev_;
    DeviceBuffer<double> center_dev_, sum_dev_;
    DeviceBuffer<long long> row_sum_dev_, bad_row_dev_;
    DeviceBuffer<float> table_dev_, tile_dev_, tile_t_dev_, row_mean_dev_, top_sim_dev_;
    DeviceBuffer<std::int64_t> top_idx_dev_;
    DeviceBuffer<unsigned long long> hist_dev_, scalars_dev_;
    DeviceBuffer<long long> dup_count_dev_, dup_offset_dev_;
    DeviceBuffer<kernels::TilePair> pairs_dev_;
    DeviceBuffer<std::uint16_t> table16_dev_;
    DeviceBuffer<double> inv_norm_dev_;
    DeviceBuffer<float> radius_dev_;
    DeviceBuffer<unsigned> exact_flags_dev_;
    PinnedAllocator pinned_;
    /// The rows of every load_block, in order, when the table is not held.
    std::unique_ptr<BlockPrefetcher> prefetch_;
    PinnedBuffer<float> sink_tile_;
    PinnedBuffer<unsigned long long> scalars_host_;

    unsigned __int128 cos_sq_fixed_ = 0;
    unsigned long long dup_total_ = 0;
    std::vector<DuplicatePair> duplicates_;
    double gflop_ = 0.0;
};

}  // namespace embgeom
