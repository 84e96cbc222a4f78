// The emulated libcublas.so.13: cuBLAS's entry points on OpenBLAS, for the emulated CUDA backend.
// Device pointers are host pointers (fake_cuda_runtime.cpp). Precision is modelled where it
// changes results: TF32 rounds both inputs to 10 mantissa bits (to nearest even) before a float32
// product, and 16-bit inputs are widened exactly, so the fast paths' re-scoring and raw-product
// logic meet the rounding they exist for.
#include <cblas.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

struct cublasContext {
    cudaStream_t stream = nullptr;
};

namespace {

CBLAS_TRANSPOSE op(cublasOperation_t o) { return o == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

float tf32(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
    std::memcpy(&v, &u, 4);
    return v;
}

// The rows x cols column-major operand (leading dimension ld) as float32.
std::vector<float> widen(const void* p, cudaDataType type, int rows, int cols, int ld,
                         bool round_tf32) {
    std::vector<float> out(static_cast<std::size_t>(ld) * cols);
    for (std::size_t e = 0; e < out.size(); ++e) {
        if (static_cast<int>(e % ld) >= rows) continue;
        float v = 0.0f;
        if (type == CUDA_R_32F)
            v = static_cast<const float*>(p)[e];
        else if (type == CUDA_R_16F)
            v = __half2float(__ushort_as_half(static_cast<const std::uint16_t*>(p)[e]));
        else
            v = __bfloat162float(__ushort_as_bfloat16(static_cast<const std::uint16_t*>(p)[e]));
        out[e] = round_tf32 ? tf32(v) : v;
    }
    return out;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    *handle = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t, cublasPointerMode_t mode) {
    return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasSetAtomicsMode(cublasHandle_t, cublasAtomicsMode_t) {
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
    *value = type == MAJOR_VERSION ? CUBLAS_VER_MAJOR : 0;
    return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusName(cublasStatus_t status) {
    return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS"
                                           : "CUBLAS_STATUS_NOT_SUPPORTED";
}
const char* cublasGetStatusString(cublasStatus_t status) { return cublasGetStatusName(status); }

cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb,
                              int m, int n, int k, const float* alpha, const float* A, int lda,
                              const float* B, int ldb, const float* beta, float* C, int ldc) {
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    cblas_sgemm(CblasColMajor, op(transa), op(transb), m, n, k, *alpha, A, lda, B, ldb, *beta, C,
                ldc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void* alpha, const void* A,
                            cudaDataType Atype, int lda, const void* B, cudaDataType Btype, int ldb,
                            const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (Ctype != CUDA_R_32F || Atype != Btype) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (compute == CUBLAS_COMPUTE_32F_FAST_TF32 && Atype != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const bool round = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
    const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
    const std::vector<float> a = widen(A, Atype, a_rows, a_cols, lda, round);
    const std::vector<float> b = widen(B, Btype, b_rows, b_cols, ldb, round);
    cblas_sgemm(CblasColMajor, op(transa), op(transb), m, n, k, *static_cast<const float*>(alpha),
                a.data(), lda, b.data(), ldb, *static_cast<const float*>(beta),
                static_cast<float*>(C), ldc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDsyrk_v2(cublasHandle_t, cublasFillMode_t uplo, cublasOperation_t trans, int n,
                              int k, const double* alpha, const double* A, int lda,
                              const double* beta, double* C, int ldc) {
    if (n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (n == 0) return CUBLAS_STATUS_SUCCESS;
    cblas_dsyrk(CblasColMajor, uplo == CUBLAS_FILL_MODE_UPPER ? CblasUpper : CblasLower, op(trans),
                n, k, *alpha, A, lda, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
