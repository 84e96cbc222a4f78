#pragma once
// Error checking for the CUDA runtime, cuBLAS and cuSOLVER. Every failing call throws CudaError,
// which is a ResourceError (exit code 4) whose message names the call, the error and the source
// line.
// Destructors use the *_NOEXCEPT forms, which only log.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <cstdio>
#include <string>

#include "cuda/cuda_libraries.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

/// "CUSOLVER_STATUS_INVALID_VALUE" etc. (cuSOLVER has no status-name function).
inline std::string cusolver_status_name(cusolverStatus_t status) {
    switch (status) {
        case CUSOLVER_STATUS_SUCCESS:
            return "CUSOLVER_STATUS_SUCCESS";
        case CUSOLVER_STATUS_NOT_INITIALIZED:
            return "CUSOLVER_STATUS_NOT_INITIALIZED";
        case CUSOLVER_STATUS_ALLOC_FAILED:
            return "CUSOLVER_STATUS_ALLOC_FAILED";
        case CUSOLVER_STATUS_INVALID_VALUE:
            return "CUSOLVER_STATUS_INVALID_VALUE";
        case CUSOLVER_STATUS_ARCH_MISMATCH:
            return "CUSOLVER_STATUS_ARCH_MISMATCH";
        case CUSOLVER_STATUS_EXECUTION_FAILED:
            return "CUSOLVER_STATUS_EXECUTION_FAILED";
        case CUSOLVER_STATUS_INTERNAL_ERROR:
            return "CUSOLVER_STATUS_INTERNAL_ERROR";
        case CUSOLVER_STATUS_NOT_SUPPORTED:
            return "CUSOLVER_STATUS_NOT_SUPPORTED";
        case CUSOLVER_STATUS_INVALID_WORKSPACE:
            return "CUSOLVER_STATUS_INVALID_WORKSPACE";
        default:
            return "CUSOLVER_STATUS_" + std::to_string(static_cast<int>(status));
    }
}

class CudaError : public ResourceError {
  public:
    CudaError(const char* call, cudaError_t status, const char* file, int line)
        : ResourceError(std::string("CUDA error: ") + call + " failed with " +
                        cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ") at " +
                        file + ":" + std::to_string(line)),
          status_(status) {}
    CudaError(const char* call, cublasStatus_t status, const char* file, int line)
        : ResourceError(std::string("cuBLAS error: ") + call + " failed with " +
                        cublas_api().cublasGetStatusName(status) + " (" +
                        cublas_api().cublasGetStatusString(status) + ") at " + file + ":" +
                        std::to_string(line)),
          status_(cudaErrorUnknown) {}
    CudaError(const char* call, cusolverStatus_t status, const char* file, int line)
        : ResourceError(std::string("cuSOLVER error: ") + call + " failed with " +
                        cusolver_status_name(status) + " at " + file + ":" + std::to_string(line)),
          status_(cudaErrorUnknown) {}
    /// The runtime error code (cudaErrorUnknown for cuBLAS and cuSOLVER failures).
    cudaError_t status() const noexcept { return status_; }

  private:
    cudaError_t status_;
};

}  // namespace embgeom

// cudaGetLastError() clears a non-sticky error so that the next check does not report it again.
#define EMBGEOM_CUDA_TRY(call)                                          \
    do {                                                                \
        const cudaError_t st_ = (call);                                 \
        if (st_ != cudaSuccess) {                                       \
            (void)cudaGetLastError();                                   \
            throw ::embgeom::CudaError(#call, st_, __FILE__, __LINE__); \
        }                                                               \
    } while (0)

#define EMBGEOM_CUDA_TRY_NOEXCEPT(call)                                                   \
    do {                                                                                  \
        const cudaError_t st_ = (call);                                                   \
        if (st_ != cudaSuccess) {                                                         \
            (void)cudaGetLastError();                                                     \
            std::fprintf(stderr, "embgeom: warning: %s failed with %s at %s:%d\n", #call, \
                         cudaGetErrorName(st_), __FILE__, __LINE__);                      \
        }                                                                                 \
    } while (0)

#define EMBGEOM_CUBLAS_TRY(call)                                        \
    do {                                                                \
        const cublasStatus_t st_ = (call);                              \
        if (st_ != CUBLAS_STATUS_SUCCESS)                               \
            throw ::embgeom::CudaError(#call, st_, __FILE__, __LINE__); \
    } while (0)

#define EMBGEOM_CUBLAS_TRY_NOEXCEPT(call)                                                       \
    do {                                                                                        \
        const cublasStatus_t st_ = (call);                                                      \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                       \
            std::fprintf(stderr, "embgeom: warning: %s failed with %s at %s:%d\n", #call,       \
                         ::embgeom::cublas_api().cublasGetStatusName(st_), __FILE__, __LINE__); \
    } while (0)

#define EMBGEOM_CUSOLVER_TRY(call)                                      \
    do {                                                                \
        const cusolverStatus_t st_ = (call);                            \
        if (st_ != CUSOLVER_STATUS_SUCCESS)                             \
            throw ::embgeom::CudaError(#call, st_, __FILE__, __LINE__); \
    } while (0)

#define EMBGEOM_CUSOLVER_TRY_NOEXCEPT(call)                                                 \
    do {                                                                                    \
        const cusolverStatus_t st_ = (call);                                                \
        if (st_ != CUSOLVER_STATUS_SUCCESS)                                                 \
            std::fprintf(stderr, "embgeom: warning: %s failed with %s at %s:%d\n", #call,   \
                         ::embgeom::cusolver_status_name(st_).c_str(), __FILE__, __LINE__); \
    } while (0)

// Follows every launch_*() call: catches bad launch configurations at once and, in Debug builds,
// faults inside the kernel at the line that launched it.
#ifdef NDEBUG
#define EMBGEOM_CHECK_LAUNCH(stream) EMBGEOM_CUDA_TRY(cudaGetLastError())
#else
#define EMBGEOM_CHECK_LAUNCH(stream)                     \
    do {                                                 \
        EMBGEOM_CUDA_TRY(cudaGetLastError());            \
        EMBGEOM_CUDA_TRY(cudaStreamSynchronize(stream)); \
    } while (0)
#endif
