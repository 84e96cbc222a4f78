#pragma once
// The CUDA all-pairs cosine engine: the CPU engine's semantics (see Backend::all_pairs) with the
// tile product on cuBLAS and the fold on the device.
//
// Flow: pass 0 reads the table in row blocks through a pinned staging buffer, normalises each
// block on the device and adds it (in row order, float64) into S. If the normalised table fits the
// device budget it stays resident; otherwise row blocks are read again for every tile that needs
// them. Tiles (I <= J) of side T are C = X^_I X^_J^T by cublasSgemm in exact float32; each tile is
// folded on the device into the per-row top-K (rows of I from C, rows of J from C^T when I != J),
// the histogram, the fixed-point sum of cos^2 and the duplicate list, and optionally copied to the
// matrix sink. The work is synchronous per tile (one compute stream); the per-tile host steps are
// small (two counters, and the duplicate pairs when there are any).
//
// Precision modes (not implemented): a bf16/tf32 mode would change only the tile product. The
// normalised blocks would be converted to the storage type by one more kernel after
// normalize_rows, the GEMM would become cublasGemmEx with the matching compute type
// (CUBLAS_COMPUTE_32F_FAST_TF32, or CUDA_R_16BF inputs with CUBLAS_COMPUTE_32F), and C would stay
// float32 so that every fold kernel, S, the row means and the sink are unchanged.
#include "cuda/cuda_resources.hpp"
#include "embgeom/backend.hpp"

namespace embgeom {

/// See Backend::all_pairs. Device memory held is at most min(opt.memory_budget (0 = 1 GiB),
/// free device memory - 256 MiB); @throws ResourceError naming the sizes when even the smallest
/// tiling does not fit, or when min(k, valid rows - 1) exceeds the kernel's limit (1024).
AllPairsResult cuda_all_pairs(CudaResources& res, RowSource& source,
                              const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt);

}  // namespace embgeom
