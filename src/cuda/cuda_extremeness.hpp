#pragma once
// The CUDA side of random-direction extremeness (Backend::extremeness, --simplex): the CPU's
// definition (src/geometry/extremeness.hpp) with the projections on cuBLAS.
//
// The M directions come from random_unit_directions on the host (they define the analysis, bit
// for bit the CPU's) and are uploaded once. Row tiles are read through a pinned staging buffer;
// a kernel centres them (float64 subtraction rounded to float32, the CPU's bits), zeroes invalid
// rows and hashes each valid row's raw bits; cublasSgemm projects the tile onto each direction
// tile (P = U Y^T, one row per direction) and a warp per direction folds P's row into running
// (max, lowest row) and (min, lowest row) extremes on the device, tiles in row order under the
// CPU's order. The counts come from argmax/argmin on the host.
//
// Agreement with the CPU: the projections are float32 GEMMs on both, but cuBLAS and BLAS sum in
// different orders (and cuBLAS may pick different kernels for different tile shapes), so they
// differ by GEMM rounding, |error| <= (d + 2) 2^-24 ||y|| per projection: where two rows' true
// projections are that close to a tie the backends may name different rows. Bit-identical rows
// are not left to rounding: as on the CPU, every winner is moved to the lowest valid row with the
// same bits (a per-row hash computed on the device, each match confirmed by reading both rows),
// so a duplicated row never wins over its lower-index twin.
#include <cstdint>
#include <vector>

#include "cuda/cuda_resources.hpp"
#include "cuda/device_table.hpp"
#include "embgeom/backend.hpp"

namespace embgeom {

/// @brief See Backend::extremeness.
///
/// Device memory: the directions 4 M d bytes, the running extremes 24 M, the mask V, the centre
/// 8 d, and one tile: t_r rows (4 d + 8 bytes each) and a t_m x t_r float32 projection block,
/// with t_r = min(t, V), t_m = min(t, M) for the largest t in 8192, 4096, ..., 256 that fits in
/// free device memory less a 256 MiB reserve (at most 256 MiB of projections). Host memory: the
/// directions (4 M d bytes, as on the CPU), a pinned t_r x d staging buffer (none when held),
/// 8 V bytes of hashes. Synchronous per row tile on res's compute stream.
/// @param[in] res     device, stream and cuBLAS handle.
/// @param[in] source  the table [V, d]; read once in row order (reads of at most
///                    opt.stream.block_rows rows when set) unless held, plus single rows to
///                    confirm copies.
/// @param[in] held    source's rows on res's device (Backend::hold_table), copied from there
///                    instead of read; or null.
/// @param[in] valid   [V] row mask, or empty for every row.
/// @param[in] opt     see ExtremenessOptions; stream.threads is used to generate the directions.
/// @throws UsageError if opt.directions is outside 1 .. 2^30 - 1; InputError if d == 0;
///         ResourceError on bad shapes, or naming the sizes when the directions and the smallest
///         tile do not fit in free device memory.
Extremeness cuda_extremeness(CudaResources& res, RowSource& source,
                             const std::vector<std::uint8_t>& valid, const ExtremenessOptions& opt,
                             const DeviceTable* held = nullptr);

}  // namespace embgeom
