#pragma once
// cuBLAS and cuSOLVER, opened with dlopen on first use instead of linked. Why: a CUDA build of
// embgeom runs on CPU-only machines too, and loading libcublas (with libcublasLt, 540 MB)
// costs every process 150 MiB of resident memory and 50-80 ms of relocation before main, which a
// CPU run never needs (measured on the dev machine: `embgeom --help` 230 MiB linked, 14 MiB
// not). Only libcudart is linked: it is small, and it answers "how many devices" without a driver.
//
// The tables hold the entry points embgeom calls; each member carries the function's name (after
// cublas_v2.h's renaming, e.g. cublasSgemm is cublasSgemm_v2), so error messages name the call.
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <string>

namespace embgeom {

struct CublasApi {
    decltype(&::cublasCreate) cublasCreate = nullptr;
    decltype(&::cublasDestroy) cublasDestroy = nullptr;
    decltype(&::cublasSetStream) cublasSetStream = nullptr;
    decltype(&::cublasSetMathMode) cublasSetMathMode = nullptr;
    decltype(&::cublasSetPointerMode) cublasSetPointerMode = nullptr;
    decltype(&::cublasSetAtomicsMode) cublasSetAtomicsMode = nullptr;
    decltype(&::cublasGetProperty) cublasGetProperty = nullptr;
    decltype(&::cublasGetStatusName) cublasGetStatusName = nullptr;
    decltype(&::cublasGetStatusString) cublasGetStatusString = nullptr;
    decltype(&::cublasSgemm) cublasSgemm = nullptr;
    // The C entry point (the header adds a C++ overload taking a cudaDataType compute type).
    cublasStatus_t (*cublasGemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                   int, const void*, const void*, cudaDataType, int, const void*,
                                   cudaDataType, int, const void*, void*, cudaDataType, int,
                                   cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
    decltype(&::cublasDsyrk) cublasDsyrk = nullptr;
};

struct CusolverApi {
    decltype(&::cusolverDnCreate) cusolverDnCreate = nullptr;
    decltype(&::cusolverDnDestroy) cusolverDnDestroy = nullptr;
    decltype(&::cusolverDnSetStream) cusolverDnSetStream = nullptr;
    decltype(&::cusolverDnDsyevd_bufferSize) cusolverDnDsyevd_bufferSize = nullptr;
    decltype(&::cusolverDnDsyevd) cusolverDnDsyevd = nullptr;
};

/// libcublas.so.<major of the headers built with>, loaded once per process (a failed load is
/// tried again on the next call).
/// @throws ResourceError naming the library, the loader's reason and what to change.
const CublasApi& cublas_api();

/// libcusolver.so.<major>, as cublas_api() (only the principal-directions stage needs it).
const CusolverApi& cusolver_api();

/// Whether this process has libcublas loaded now (tests: a CPU run must not load it).
bool cublas_loaded();

/// Opens a CUDA library by its soname (LD_LIBRARY_PATH, the binary's run path, ld.so.conf), else
/// from the folder the linked libcudart came from (the toolkit's lib64, or a wheel's lib folder).
/// Never closed: the handles it makes live until the process ends.
/// @param needed_for  "the CUDA backend needs cuBLAS", for the error message
/// @throws ResourceError when neither place has it.
void* open_cuda_library(const std::string& soname, const std::string& needed_for);

}  // namespace embgeom
