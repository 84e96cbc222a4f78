#pragma once
// Host rows (any leading dimension, pageable memory) packed densely into device memory, for callers
// that do not synchronise between uploads (the covariance pass). Dense rows go as one 1-D copy: a
// 2-D copy from pageable memory may be staged by the driver row by row (the per-token passes moved
// ~1 GB/s on an H100 machine with 2-D copies of 3 KiB rows; they now stage through pinned memory).
#include <cuda_runtime_api.h>

#include "cuda/cuda_check.hpp"
#include "embgeom/matrix_view.hpp"

namespace embgeom {

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
