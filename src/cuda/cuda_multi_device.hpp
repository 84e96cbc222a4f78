#pragma once
// The all-pairs engine on several devices (--devices 0,1,...), with results identical to one
// device.
//
// Every engine plans with the same device memory (the least any listed device can give, a device
// listed m times giving each of its engines 1/m), so every engine picks the same plan and tile
// side: cuBLAS sees the same tile shapes, and every cosine has the bits one device gives it.
// Each engine runs pass 0 whole (S, row means: cheap, and it keeps the engines independent) and
// folds the upper-triangle tile pairs dealt to it round-robin in the one-device order, on its own
// host thread with its device current. The partial results merge exactly: per-row top-K lists by
// the engine's total order (engine::TopKLists), histogram counts, the fixed-point cos^2 and row
// sums added as integers, duplicate lists merged by (i, j) and cut at max_dup_pairs; row means
// and S come from the first engine.
//
// Re-scored paths (tf32, bf16, fp16 with K' candidates): re-scoring each engine's own best K' fast
// candidates would re-score a superset of the one device's, and could then keep a different top
// K. So every engine hands on its candidates as the fast product ranked them
// (EngineShare::defer_rescore); the best K' of their union, by the fast cosines (which have the
// one-device bits), are exactly the one device's candidates, and they are re-scored once on the
// first device (merged_rescore.hpp). Near-duplicate candidates are re-scored pair by pair in the
// engines, as on one device.
//
// The source is read under a lock (one read at a time) and the matrix sink is called under a
// lock; progress reports, on the calling thread, the tiles done by all engines together.
#include <vector>

#include "cuda/cuda_resources.hpp"
#include "cuda/device_table.hpp"
#include "embgeom/backend.hpp"
#include "geometry/csls.hpp"

namespace embgeom {

/// @brief Backend::all_pairs over the engines of `devices` (one per entry; entries may share a
///        device). With one entry this is cuda_all_pairs.
/// @param[in] devices  the engines' resources, in --devices order; not empty.
/// @param[in] held     source's rows on one device (Backend::hold_table), or null: the engines on
///                     that device copy their rows from it, the others read source.
/// @throws the first exception any engine threw (ResourceError, CudaError, InputError).
AllPairsResult cuda_multi_device_all_pairs(const std::vector<CudaResources*>& devices,
                                           RowSource& source,
                                           const std::vector<std::uint8_t>& valid,
                                           const AllPairsOptions& opt,
                                           const DeviceTable* held = nullptr);

/// @brief Backend::csls_neighbors over the engines of `devices`, sharing the tile pairs as above;
///        the CSLS lists merge by the same total order (score descending, ties by lower index),
///        so they are the one-device lists bit for bit. With one entry this is
///        cuda_csls_neighbors.
/// @throws as cuda_csls_neighbors, or the first exception any engine threw.
CslsNeighbors cuda_multi_device_csls_neighbors(const std::vector<CudaResources*>& devices,
                                               RowSource& source,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<float>& radius, std::int64_t k,
                                               const AllPairsOptions& opt,
                                               const DeviceTable* held = nullptr);

}  // namespace embgeom
