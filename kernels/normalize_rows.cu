#include "kernel_utils.cuh"
#include "normalize_rows.cuh"

namespace embgeom::kernels {
namespace {

// One thread per row, columns in order, explicit _rn arithmetic (never contracted into FMA): the
// same operations in the same order as the host, hence the same bits. Rows are read with a
// stride, which costs bandwidth, but this runs once per row block, not per tile.
__global__ void normalize_rows_kernel(float* x, std::int64_t rows, std::int64_t cols,
                                      std::int64_t ld, const std::uint8_t* valid,
                                      const double* center, std::uint8_t* zero_row, long long row0,
                                      long long* bad_row) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         r < rows; r += stride) {
        float* row = x + r * ld;
        double ss = 0.0;
        if (valid[r]) {
            for (std::int64_t c = 0; c < cols; ++c) {
                const double v = center ? __dsub_rn(static_cast<double>(row[c]), center[c])
                                        : static_cast<double>(row[c]);
                ss = __dadd_rn(ss, __dmul_rn(v, v));
            }
        }
        const double norm = __dsqrt_rn(ss);
        const bool usable = valid[r] && norm > 0.0 && isfinite(norm);
        if (valid[r] && !isfinite(norm)) atomicMax(bad_row, row0 + r);
        zero_row[r] = valid[r] && !(norm > 0.0) ? 1 : 0;
        for (std::int64_t c = 0; c < cols; ++c) {
            if (!usable) {
                row[c] = 0.0f;
                continue;
            }
            const double v = center ? __dsub_rn(static_cast<double>(row[c]), center[c])
                                    : static_cast<double>(row[c]);
            row[c] = __double2float_rn(__ddiv_rn(v, norm));
        }
    }
}

}  // namespace

void launch_normalize_rows(float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                           const std::uint8_t* valid, const double* center, std::uint8_t* zero_row,
                           long long row0, long long* bad_row, cudaStream_t stream) {
    if (rows <= 0) return;
    constexpr int kThreads = 128;
    normalize_rows_kernel<<<grid_for(rows, kThreads), kThreads, 0, stream>>>(
        x, rows, cols, ld, valid, center, zero_row, row0, bad_row);
}

}  // namespace embgeom::kernels
