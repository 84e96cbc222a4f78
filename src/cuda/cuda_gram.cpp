#include "cuda/cuda_gram.hpp"

#include <algorithm>
#include <climits>
#include <new>
#include <string>

#include "core/checked_alloc.hpp"
#include "cuda/cuda_libraries.hpp"
#include "cuda/upload_rows.hpp"
#include "embgeom/errors.hpp"
#include "rows_to_shifted_double.cuh"

namespace embgeom {
namespace {

// One piece of a host block: this many bytes of float64 rows (plus the float32 copy and the
// mask). It keeps cublasDsyrk's k in the thousands up to d = 4096 (k = 2048 there) and stays
// small beside the d^2 doubles of S for any d where the Gram matrix is worth a GPU.
constexpr std::size_t kPieceBytes = 64ull << 20;

std::string mib(std::size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20); }

/// @throws ResourceError naming `what`, its size and the device's free memory when bytes do not
///         fit in what is free now.
void check_device_fits(std::size_t bytes, const std::string& what) {
    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (bytes > free_bytes)
        throw ResourceError(what + " need " + mib(bytes) + " MiB of device memory, but only " +
                            mib(free_bytes) + " MiB of " + mib(total_bytes) + " MiB are free");
}


std::string square(std::int64_t d) { return std::to_string(d) + " x " + std::to_string(d); }

class CudaGramAccumulator final : public GramAccumulator {
  public:
    CudaGramAccumulator(CudaResources& res, std::int64_t d, const std::vector<double>& shift)
        : res_(res),
          d_(d),
          piece_rows_(std::max<std::int64_t>(
              1, static_cast<std::int64_t>(kPieceBytes / sizeof(double)) / d)) {
        EMBGEOM_EXPECTS(d >= 1 && static_cast<std::int64_t>(shift.size()) == d,
                        "Gram accumulator needs d >= 1 and a shift of d entries");
        EMBGEOM_EXPECTS(d <= INT_MAX, "Gram accumulator: d fits an int");
        DeviceScope scope(res_.device());
        const cudaStream_t s = res_.compute_stream();
        const std::size_t dd = static_cast<std::size_t>(d);
        const std::size_t piece = static_cast<std::size_t>(piece_rows_);
        check_device_fits(dd * dd * sizeof(double) + 2 * dd * sizeof(double) +
                              piece * (dd * (sizeof(double) + sizeof(float)) + 1),
                          "the " + square(d) + " float64 Gram matrix (" +
                              mib(dd * dd * sizeof(double)) + " MiB) and a block of " +
                              std::to_string(piece_rows_) + " rows");
        gram_ = DeviceBuffer<double>(dd * dd);
        sums_ = DeviceBuffer<double>(dd);
        shift_ = DeviceBuffer<double>(dd);
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(gram_.data(), 0, gram_.bytes(), s));
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(sums_.data(), 0, sums_.bytes(), s));
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(shift_.data(), shift.data(), shift_.bytes(),
                                         cudaMemcpyHostToDevice, s));
        EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
    }

    void add(MatrixView<const float> block, const std::uint8_t* valid_rows) override {
        EMBGEOM_EXPECTS(block.cols == d_, "block has d columns");
        EMBGEOM_EXPECTS(gram_.data() != nullptr, "add after finish");
        if (block.rows <= 0) return;
        const std::int64_t d = d_;
        DeviceScope scope(res_.device());
        const cudaStream_t s = res_.compute_stream();
        const cublasHandle_t h = res_.cublas();
        const std::int64_t piece = std::min(piece_rows_, block.rows);
        x_.reserve_discard(static_cast<std::size_t>(piece * d));
        y_.reserve_discard(static_cast<std::size_t>(piece * d));
        mask_.reserve_discard(static_cast<std::size_t>(piece));
        const double one = 1.0;
        bool queued = false;
        // Pieces in row order keep t in row order. Rows left out are zeroed, not packed: they add
        // exact zeros to S and are rare (non-finite rows).
        for (std::int64_t first = 0; first < block.rows; first += piece) {
            const std::int64_t count = std::min(piece, block.rows - first);
            const std::int64_t m = std::count_if(valid_rows + first, valid_rows + first + count,
                                                 [](std::uint8_t v) { return v != 0; });
            if (m == 0) continue;
            upload_rows(x_.data(), block.slice_rows(first, count), s);
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(mask_.data(), valid_rows + first, count,
                                             cudaMemcpyHostToDevice, s));
            kernels::launch_rows_to_shifted_double(x_.data(), count, d, d, shift_.data(),
                                                   mask_.data(), y_.data(), sums_.data(), s);
            EMBGEOM_CHECK_LAUNCH(s);
            // Row-major Y [count, d] is the column-major Y^T [d, count] with ld d:
            // S += (Y^T)(Y^T)^T = Y^T Y.
            EMBGEOM_CUBLAS_TRY(cublas_api().cublasDsyrk(
                h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, static_cast<int>(d),
                static_cast<int>(count), &one, y_.data(), static_cast<int>(d), &one, gram_.data(),
                static_cast<int>(d)));
            n_ += m;
            queued = true;
        }
        // The caller reuses block and valid_rows when add() returns.
        if (queued) EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
    }

    GramSums finish() override {
        EMBGEOM_EXPECTS(gram_.data() != nullptr, "finish called twice");
        const std::int64_t d = d_;
        GramSums out;
        out.dims = d;
        out.n = n_;
        out.gram = checked_vector<double>(static_cast<std::size_t>(d * d), "the d x d covariance");
        out.column_sums = checked_vector<double>(static_cast<std::size_t>(d), "the column sums");
        {
            DeviceScope scope(res_.device());
            const cudaStream_t s = res_.compute_stream();
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.gram.data(), gram_.data(), gram_.bytes(),
                                             cudaMemcpyDeviceToHost, s));
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.column_sums.data(), sums_.data(), sums_.bytes(),
                                             cudaMemcpyDeviceToHost, s));
            EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
            gram_ = {};
            sums_ = {};
            shift_ = {};
            x_ = {};
            y_ = {};
            mask_ = {};
        }
        // cuBLAS filled the upper triangle of the row-major S.
        double* S = out.gram.data();
        for (std::int64_t i = 0; i < d; ++i)
            for (std::int64_t j = i + 1; j < d; ++j) S[j * d + i] = S[i * d + j];
        return out;
    }

  private:
    CudaResources& res_;
    std::int64_t d_;
    std::int64_t piece_rows_;
    std::int64_t n_ = 0;
    DeviceBuffer<double> gram_, sums_, shift_, y_;
    DeviceBuffer<float> x_;
    DeviceBuffer<std::uint8_t> mask_;
};

}  // namespace

void CusolverHandle::Release::operator()(cusolverDnContext* h) const noexcept {
    EMBGEOM_CUSOLVER_TRY_NOEXCEPT(cusolver_api().cusolverDnDestroy(h));
}

CusolverHandle::CusolverHandle(cudaStream_t stream) {
    const CusolverApi& api = cusolver_api();
    cusolverDnHandle_t h = nullptr;
    EMBGEOM_CUSOLVER_TRY(api.cusolverDnCreate(&h));
    h_.reset(h);
    EMBGEOM_CUSOLVER_TRY(api.cusolverDnSetStream(h, stream));
}

std::unique_ptr<GramAccumulator> make_cuda_gram_accumulator(CudaResources& res, std::int64_t d,
                                                            const std::vector<double>& shift) {
    return std::make_unique<CudaGramAccumulator>(res, d, shift);
}

void cuda_symmetric_eigen(CudaResources& res, CusolverHandle& solver, std::int64_t d,
                          std::vector<double>& a, std::vector<double>& eigenvalues) {
    EMBGEOM_EXPECTS(d >= 1 && static_cast<std::int64_t>(a.size()) == d * d,
                    "symmetric_eigen: a holds d x d values");
    EMBGEOM_EXPECTS(d <= INT_MAX, "symmetric_eigen: d fits an int");
    eigenvalues = checked_vector<double>(static_cast<std::size_t>(d), "the eigenvalues");
    DeviceScope scope(res.device());
    const cudaStream_t s = res.compute_stream();
    const int n = static_cast<int>(d);
    const std::size_t dd = static_cast<std::size_t>(d);
    check_device_fits(dd * dd * sizeof(double) + dd * sizeof(double),
                      "the " + square(d) + " float64 matrix to diagonalise and its eigenvalues");
    DeviceBuffer<double> A(dd * dd), W(dd);
    DeviceBuffer<int> info(1);
    // Column-major cuSOLVER on a symmetric matrix: the row-major input is the same matrix, and
    // eigenvector k comes back as the contiguous column k, i.e. row k of the row-major result.
    int lwork = 0;
    const CusolverApi& api = cusolver_api();
    EMBGEOM_CUSOLVER_TRY(api.cusolverDnDsyevd_bufferSize(solver.get(), CUSOLVER_EIG_MODE_VECTOR,
                                                         CUBLAS_FILL_MODE_UPPER, n, A.data(), n,
                                                         W.data(), &lwork));
    if (lwork < 0)
        throw ResourceError("cusolverDnDsyevd: the workspace of the " + square(d) +
                            " eigendecomposition exceeds its 32-bit size");
    const std::size_t work_bytes = static_cast<std::size_t>(lwork) * sizeof(double);
    check_device_fits(work_bytes, "the workspace of cusolverDnDsyevd on a " + square(d) +
                                      " matrix (" + mib(work_bytes) + " MiB, beside " +
                                      mib(A.bytes()) + " MiB for the matrix)");
    DeviceBuffer<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(A.data(), a.data(), A.bytes(), cudaMemcpyHostToDevice, s));
    EMBGEOM_CUSOLVER_TRY(api.cusolverDnDsyevd(solver.get(), CUSOLVER_EIG_MODE_VECTOR,
                                              CUBLAS_FILL_MODE_UPPER, n, A.data(), n, W.data(),
                                              work.data(), lwork, info.data()));
    int host_info = 0;
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(a.data(), A.data(), A.bytes(), cudaMemcpyDeviceToHost, s));
    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(eigenvalues.data(), W.data(), W.bytes(), cudaMemcpyDeviceToHost, s));
    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(&host_info, info.data(), sizeof(int), cudaMemcpyDeviceToHost, s));
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
    if (host_info != 0)
        throw ResourceError("cusolverDnDsyevd failed to converge on the " + square(d) +
                            " symmetric matrix (info " + std::to_string(host_info) + ")");
}

}  // namespace embgeom
