#pragma once
// The engine's per-row lists brought back to the host in their final form, for the engine's own
// finish and for lists merged from several engines (cuda_multi_device.cpp).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace embgeom {

/// index_dev / sim_dev: [n, kc] lists on the device (sorted best first; when rescored, re-scored
/// candidates in any order). Writes out_index / out_sim [n, width] (host; AllPairsResult's
/// neighbour lists) with the best min(width, kc) of each row, by similarity descending, ties by
/// lower index, and index -1 / NaN beyond a row's entries (empty slots hold kTopkEmptyIndex).
/// When scratch (device memory the caller no longer needs, scratch_bytes long) holds the final
/// lists and they are at most kernels::kSelectTopkMaxK wide, a warp per row selects them on the
/// device and only [n, width] crosses; otherwise the lists cross and the host selects
/// (engine::select_rescored_topk, which the kernel matches bit for bit; sorted lists are copied as
/// they are). Returns when out is written.
void copy_final_lists(cudaStream_t stream, const std::int64_t* index_dev, const float* sim_dev,
                      std::int64_t n, int kc, std::int64_t width, bool rescored, void* scratch,
                      std::size_t scratch_bytes, std::int64_t* out_index, float* out_sim);

}  // namespace embgeom
