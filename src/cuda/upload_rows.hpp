#pragma once
// Host rows (any leading dimension) packed densely for the device: through page-locked staging
// filled by the calling thread's OpenMP threads (stage_rows: the per-token passes, the held table), or straight from
// pageable memory for callers that do not synchronise between uploads (upload_rows: the
// covariance pass), where dense rows go as one 1-D copy: a 2-D copy from pageable memory may be
// staged by the driver row by row (the per-token passes moved ~1 GB/s on an H100 machine with 2-D
// copies of 3 KiB rows; they now stage through pinned memory).
#include <cuda_runtime_api.h>

#include <cstring>

#include "cuda/cuda_check.hpp"
#include "embgeom/matrix_view.hpp"

namespace embgeom {

/// Packs rows (any leading dimension) densely into dst, a page-locked staging buffer for one
/// asynchronous copy, by the calling thread's OpenMP threads (--threads in analyze, which sets
/// them: core/openmp_threads.hpp): one thread's copy is far below the host's memory
/// bandwidth, and a copy from pageable memory goes through the driver's own staging, one thread
/// at a time.
inline void stage_rows(MatrixView<const float> rows, float* dst) {
    const std::int64_t d = rows.cols;
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows.rows; ++r)
        std::memcpy(dst + r * d, rows.row(r), sizeof(float) * static_cast<std::size_t>(d));
}

inline void upload_rows(float* dst, MatrixView<const float> rows, cudaStream_t s) {
    if (rows.rows <= 0 || rows.cols <= 0) return;
    if (rows.ld == rows.cols || rows.rows == 1) {
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dst, rows.data, sizeof(float) * rows.rows * rows.cols,
                                         cudaMemcpyHostToDevice, s));
        return;
    }
    EMBGEOM_CUDA_TRY(cudaMemcpy2DAsync(dst, sizeof(float) * rows.cols, rows.data,
                                       sizeof(float) * rows.ld, sizeof(float) * rows.cols,
                                       rows.rows, cudaMemcpyHostToDevice, s));
}

}  // namespace embgeom
