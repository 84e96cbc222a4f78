#pragma once
// Page-locked host buffers for the BlockPrefetcher (core/block_prefetcher.hpp): copies from them
// to the device run asynchronously and at full PCIe/NVLink speed, while the prefetcher's thread
// already reads the next block into another one.
#include <cuda_runtime.h>

#include "core/block_prefetcher.hpp"
#include "cuda/cuda_check.hpp"

namespace embgeom {

class PinnedAllocator final : public HostBufferAllocator {
  public:
    float* allocate(std::size_t floats) override {
        void* p = nullptr;
        EMBGEOM_CUDA_TRY(cudaMallocHost(&p, std::max<std::size_t>(1, floats) * sizeof(float)));
        return static_cast<float*>(p);
    }
    void deallocate(float* p) noexcept override { EMBGEOM_CUDA_TRY_NOEXCEPT(cudaFreeHost(p)); }
};

}  // namespace embgeom
