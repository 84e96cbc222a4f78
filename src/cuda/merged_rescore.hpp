#pragma once
// The finish of a re-scored product (tf32, bf16, fp16 with K' candidates) for lists merged from
// several engines (cuda_multi_device.cpp): each engine hands on its candidates as the fast
// product ranked them (EngineShare::defer_rescore), the best K' of their union are exactly the
// candidates one engine would have kept, and this re-scores them once, as that engine would have.
#include <cstdint>
#include <optional>
#include <vector>

#include "cuda/cuda_resources.hpp"
#include "cuda/device_table.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

/// Normalises the rows of source on res's device as the engine does (kernels/normalize_rows.cu,
/// with valid and center; copied from held, source's rows on res's device, else uploaded),
/// re-scores every candidate of cand_index ([rows, kc], kTopkEmptyIndex for an empty slot) in
/// float32 (kernels/rescore_candidates.cu) and writes each row's best k to out_index / out_sim
/// ([rows, k], padded with -1 / NaN; copy_final_lists). Returns when out is written.
/// @throws InputError when source fails to read, ResourceError when device memory runs out.
void rescore_merged_candidates(CudaResources& res, RowSource& source, const DeviceTable* held,
                               const std::vector<std::uint8_t>& valid,
                               const std::optional<std::vector<double>>& center,
                               const std::vector<std::int64_t>& cand_index, int kc, std::int64_t k,
                               std::int64_t* out_index, float* out_sim);

}  // namespace embgeom
