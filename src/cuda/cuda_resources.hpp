#pragma once
// The per-backend CUDA state. Construction makes no CUDA call, so a binary linked to cudart can
// create one (and print --help) on a machine with no driver; the stream and the cuBLAS handle
// (cuBLAS itself is loaded then: cuda_libraries.hpp) are created on first use, on the device
// chosen at construction. The engines are synchronous per tile, so one compute stream is all
// they need; a copy stream joins it when block loads are overlapped with compute.
#include <memory>
#include <string>

#include "cuda/device_buffer.hpp"

namespace embgeom {

class CudaResources {
  public:
    explicit CudaResources(int device) : device_(device) {}
    CudaResources(const CudaResources&) = delete;
    CudaResources& operator=(const CudaResources&) = delete;

    int device() const noexcept { return device_; }
    /// Non-blocking stream for kernels and cuBLAS.
    cudaStream_t compute_stream();
    /// cuBLAS handle on compute_stream(), default math mode (exact float32, no TF32), host
    /// pointer mode, atomics not allowed (deterministic results).
    cublasHandle_t cublas();

  private:
    void init();

    int device_;
    std::unique_ptr<CudaStream> compute_;
    std::unique_ptr<CublasHandle> cublas_;
};

/// Facts about a device for names and messages, e.g. "NVIDIA H100 80GB HBM3, sm_90, driver 12.4,
/// cuBLAS 13.0.0".
std::string cuda_device_description(int device);

/// "cuBLAS 13.1.0": the version of the cuBLAS this process loaded (loading it on first use).
/// @throws ResourceError when it cannot be loaded.
std::string cublas_version_text();

}  // namespace embgeom
