#include "cuda/cuda_all_pairs.hpp"

#include "cuda/all_pairs_engine.hpp"
#include "cuda/cuda_check.hpp"
#include "engine/device_memory_plan.hpp"
#include "geometry/csls.hpp"

namespace embgeom {

AllPairsResult cuda_all_pairs(CudaResources& res, RowSource& source,
                              const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt,
                              const DeviceTable* held) {
    DeviceScope scope(res.device());
    return AllPairsEngine(res, source, valid, opt, held).run();
}

std::uint64_t all_pairs_device_budget(const AllPairsOptions& opt) {
    return engine::device_budget(opt);
}

std::uint64_t all_pairs_largest_plan_bytes(std::int64_t rows, std::int64_t cols,
                                           const AllPairsOptions& opt) {
    return engine::largest_device_plan_bytes(rows, cols, opt);
}

std::uint64_t all_pairs_usable_device_bytes(CudaResources& res) {
    DeviceScope scope(res.device());
    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    return free_bytes > engine::kDeviceReserve ? free_bytes - engine::kDeviceReserve : 0;
}

AllPairsResult cuda_all_pairs_share(CudaResources& res, RowSource& source,
                                    const std::vector<std::uint8_t>& valid,
                                    const AllPairsOptions& opt, const EngineShare& share,
                                    AllPairsPartial* partial, const DeviceTable* held) {
    EMBGEOM_EXPECTS(share.count >= 1 && share.index >= 0 && share.index < share.count,
                    "engine share in range");
    DeviceScope scope(res.device());
    return AllPairsEngine(res, source, valid, opt, held, nullptr, share, partial).run();
}

CslsNeighbors cuda_csls_neighbors(CudaResources& res, RowSource& source,
                                  const std::vector<std::uint8_t>& valid,
                                  const std::vector<float>& radius, std::int64_t k,
                                  const AllPairsOptions& opt, const DeviceTable* held) {
    const std::vector<std::uint8_t> mask =
        checked_csls_mask(source.rows(), valid, radius, k, opt.block_rows);  // the CPU's contract
    return cuda_csls_neighbors_share(res, source, mask, radius, k, opt, EngineShare{}, held);
}

CslsNeighbors cuda_csls_neighbors_share(CudaResources& res, RowSource& source,
                                        const std::vector<std::uint8_t>& mask,
                                        const std::vector<float>& radius, std::int64_t k,
                                        const AllPairsOptions& opt, const EngineShare& share,
                                        const DeviceTable* held) {
    EMBGEOM_EXPECTS(share.count >= 1 && share.index >= 0 && share.index < share.count,
                    "engine share in range");
    // Exact float32 whatever was requested (the CPU ranks exact cosines), no centre, and nothing
    // but the lists: one histogram bin, no duplicate pairs, no sink, no progress.
    AllPairsOptions o;
    o.k = k;
    o.block_rows = opt.block_rows;
    o.memory_budget = opt.memory_budget;
    o.device_memory_budget = opt.device_memory_budget;
    o.precision = Precision::kExact;
    o.hist_bins = 1;
    o.max_dup_pairs = 0;

    DeviceScope scope(res.device());
    AllPairsEngine engine(res, source, mask, o, held, &radius, share);
    AllPairsResult r = engine.run();
    CslsNeighbors out;
    out.rows = source.rows();
    out.k = k;
    out.index = std::move(r.neighbor_index);
    out.score = std::move(r.neighbor_sim);
    out.valid_rows = r.valid_rows;
    out.resident = engine.resident();
    return out;
}

}  // namespace embgeom
