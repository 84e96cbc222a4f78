#include <cmath>

#include "kernel_utils.cuh"
#include "tile_topk.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kThreads = 256;

__device__ inline bool better(float sa, std::int64_t ia, float sb, std::int64_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

__global__ void topk_init_kernel(float* sims, std::int64_t* index, std::int64_t count) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < count; e += stride) {
        sims[e] = -INFINITY;
        index[e] = kTopkEmptyIndex;
    }
}

// Bitonic sort of p (a power of two) entries, best first.
__device__ void sort_best_first(float* s_sim, std::int64_t* s_idx, int p) {
    for (int size = 2; size <= p; size *= 2) {
        for (int stride = size / 2; stride > 0; stride /= 2) {
            for (int t = threadIdx.x; t < p; t += blockDim.x) {
                const int u = t ^ stride;
                if (u <= t) continue;
                const bool best_first = (t & size) == 0;
                const bool swap = best_first ? better(s_sim[u], s_idx[u], s_sim[t], s_idx[t])
                                             : better(s_sim[t], s_idx[t], s_sim[u], s_idx[u]);
                if (swap) {
                    const float fs = s_sim[t];
                    s_sim[t] = s_sim[u];
                    s_sim[u] = fs;
                    const std::int64_t fi = s_idx[t];
                    s_idx[t] = s_idx[u];
                    s_idx[u] = fi;
                }
            }
            __syncthreads();
        }
    }
}

// One block per tile row. Shared memory holds the row's list in [0, k) (sorted, best first) and
// a buffer of candidates in [k, p). A candidate is buffered only if it beats the list's current
// worst entry; before the buffer could overflow (and at the end of the row) list and buffer are
// sorted together and the best k kept. p - k >= 2 * kThreads, so one chunk of kThreads columns
// always fits after a check that leaves at most p - k - kThreads entries.
__global__ void tile_topk_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                 std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                 const std::uint8_t* valid, float* sims, std::int64_t* index, int k,
                                 int p) {
    extern __shared__ std::int64_t s_idx[];
    float* s_sim = reinterpret_cast<float*>(s_idx + p);
    __shared__ int s_count;
    const int cap = p - k;

    for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const std::int64_t i = row0 + r;
        if (!valid[i]) continue;  // uniform over the block
        float* list_sim = sims + i * k;
        std::int64_t* list_idx = index + i * k;
        for (int t = threadIdx.x; t < k; t += blockDim.x) {
            s_sim[t] = list_sim[t];
            s_idx[t] = list_idx[t];
        }
        if (threadIdx.x == 0) s_count = 0;
        __syncthreads();

        const float* row = tile + r * ld;
        for (std::int64_t c0 = 0; c0 < cols; c0 += kThreads) {
            const std::int64_t c = c0 + threadIdx.x;
            if (c < cols) {
                const std::int64_t j = col0 + c;
                if (j != i && valid[j]) {
                    const float v = row[c];
                    if (better(v, j, s_sim[k - 1], s_idx[k - 1])) {
                        const int slot = atomicAdd(&s_count, 1);
                        s_sim[k + slot] = v;
                        s_idx[k + slot] = j;
                    }
                }
            }
            __syncthreads();
            const int count = s_count;
            __syncthreads();  // everyone has read s_count before anyone changes it again
            const bool last = c0 + kThreads >= cols;
            if (count > cap - kThreads || (last && count > 0)) {
                for (int t = k + count + threadIdx.x; t < p; t += blockDim.x) {
                    s_sim[t] = -INFINITY;
                    s_idx[t] = kTopkEmptyIndex;
                }
                __syncthreads();
                sort_best_first(s_sim, s_idx, p);
                if (threadIdx.x == 0) s_count = 0;
                __syncthreads();
            }
        }

        for (int t = threadIdx.x; t < k; t += blockDim.x) {
            list_sim[t] = s_sim[t];
            list_idx[t] = s_idx[t];
        }
        __syncthreads();  // the next row reuses shared memory
    }
}

int sort_size(int k) {
    int p = 1;
    while (p < k + 2 * kThreads) p *= 2;
    return p;
}

}  // namespace

void launch_topk_init(float* sims, std::int64_t* index, std::int64_t count, cudaStream_t stream) {
    if (count <= 0) return;
    topk_init_kernel<<<grid_for(count, 256), 256, 0, stream>>>(sims, index, count);
}

void launch_tile_topk(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                      std::int64_t row0, std::int64_t col0, const std::uint8_t* valid, float* sims,
                      std::int64_t* index, int k, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0 || k <= 0) return;
    const int p = sort_size(k);
    const std::size_t shared = static_cast<std::size_t>(p) * (sizeof(std::int64_t) + sizeof(float));
    tile_topk_kernel<<<grid_for(rows, 1), kThreads, shared, stream>>>(
        tile, ld, rows, cols, row0, col0, valid, sims, index, k, p);
}

}  // namespace embgeom::kernels
