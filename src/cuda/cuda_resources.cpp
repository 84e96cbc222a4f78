#include "cuda/cuda_resources.hpp"

#include <library_types.h>

namespace embgeom {

void CudaResources::init() {
    if (cublas_) return;
    DeviceScope scope(device_);
    compute_ = std::make_unique<CudaStream>();
    auto handle = std::make_unique<CublasHandle>(compute_->get());
    const CublasApi& api = cublas_api();
    // Exact float32: CUBLAS_DEFAULT_MATH never uses TF32 for cublasSgemm (only the
    // NVIDIA_TF32_OVERRIDE environment variable could, and we document that it must stay unset).
    EMBGEOM_CUBLAS_TRY(api.cublasSetMathMode(handle->get(), CUBLAS_DEFAULT_MATH));
    EMBGEOM_CUBLAS_TRY(api.cublasSetPointerMode(handle->get(), CUBLAS_POINTER_MODE_HOST));
    EMBGEOM_CUBLAS_TRY(api.cublasSetAtomicsMode(handle->get(), CUBLAS_ATOMICS_NOT_ALLOWED));
    cublas_ = std::move(handle);
}

cudaStream_t CudaResources::compute_stream() {
    init();
    return compute_->get();
}

cublasHandle_t CudaResources::cublas() {
    init();
    return cublas_->get();
}

std::string cuda_device_description(int device) {
    cudaDeviceProp prop{};
    EMBGEOM_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
    int driver = 0;
    EMBGEOM_CUDA_TRY(cudaDriverGetVersion(&driver));
    return std::string(prop.name) + ", sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + ", driver " + std::to_string(driver / 1000) + "." +
           std::to_string((driver % 1000) / 10) + ", " + cublas_version_text();
}

std::string cublas_version_text() {
    int major = 0, minor = 0, patch = 0;
    const CublasApi& api = cublas_api();
    EMBGEOM_CUBLAS_TRY(api.cublasGetProperty(MAJOR_VERSION, &major));
    EMBGEOM_CUBLAS_TRY(api.cublasGetProperty(MINOR_VERSION, &minor));
    EMBGEOM_CUBLAS_TRY(api.cublasGetProperty(PATCH_LEVEL, &patch));
    return "cuBLAS " + std::to_string(major) + "." + std::to_string(minor) + "." +
           std::to_string(patch);
}

}  // namespace embgeom
