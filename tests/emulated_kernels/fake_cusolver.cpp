// The emulated libcusolver.so.12: the symmetric eigensolver on LAPACK's dsyevd (OpenBLAS), for
// the emulated CUDA backend. Device pointers are host pointers.
#include <vector>

#include "cusolverDn.h"

extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info);

struct cusolverDnContext {
    cudaStream_t stream = nullptr;
};

namespace {
const char* fill(cublasFillMode_t uplo) { return uplo == CUBLAS_FILL_MODE_UPPER ? "U" : "L"; }
const char* job(cusolverEigMode_t mode) { return mode == CUSOLVER_EIG_MODE_VECTOR ? "V" : "N"; }
}  // namespace

extern "C" {

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t* handle) {
    *handle = new cusolverDnContext;
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle) {
    delete handle;
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t stream) {
    handle->stream = stream;
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t, cusolverEigMode_t jobz,
                                             cublasFillMode_t uplo, int n, const double*, int lda,
                                             const double*, int* lwork) {
    if (n < 0 || lda < (n > 1 ? n : 1)) return CUSOLVER_STATUS_INVALID_VALUE;
    double size = 0.0;
    int isize = 0, query = -1, info = 0;
    dsyevd_(job(jobz), fill(uplo), &n, nullptr, &lda, nullptr, &size, &query, &isize, &query,
            &info);
    *lwork = static_cast<int>(size) + 1;
    return info == 0 ? CUSOLVER_STATUS_SUCCESS : CUSOLVER_STATUS_INVALID_VALUE;
}
cusolverStatus_t cusolverDnDsyevd(cusolverDnHandle_t, cusolverEigMode_t jobz, cublasFillMode_t uplo,
                                  int n, double* A, int lda, double* W, double* work, int lwork,
                                  int* info) {
    if (n < 0 || lda < (n > 1 ? n : 1)) return CUSOLVER_STATUS_INVALID_VALUE;
    int isize = 0, query = -1;
    double size = 0.0;
    dsyevd_(job(jobz), fill(uplo), &n, A, &lda, W, &size, &query, &isize, &query, info);
    if (*info != 0) return CUSOLVER_STATUS_INTERNAL_ERROR;
    if (lwork < static_cast<int>(size)) return CUSOLVER_STATUS_INVALID_WORKSPACE;
    std::vector<int> iwork(static_cast<std::size_t>(isize > 1 ? isize : 1));
    const int liwork = static_cast<int>(iwork.size());
    dsyevd_(job(jobz), fill(uplo), &n, A, &lda, W, work, &lwork, iwork.data(), &liwork, info);
    return CUSOLVER_STATUS_SUCCESS;
}

}  // extern "C"
