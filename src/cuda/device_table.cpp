#include "cuda/device_table.hpp"

#include <algorithm>

#include "cuda/cuda_check.hpp"
#include "cuda/upload_rows.hpp"

namespace embgeom {
namespace {

constexpr std::size_t kPieceBytes = 64ull << 20;

}  // namespace

void upload_table(CudaResources& res, RowSource& source, float* dst) {
    const std::int64_t rows = source.rows(), cols = source.cols();
    if (rows <= 0 || cols <= 0) return;
    DeviceScope scope(res.device());
    const cudaStream_t s = res.compute_stream();
    const std::int64_t piece = std::clamp<std::int64_t>(
        static_cast<std::int64_t>(kPieceBytes / sizeof(float)) / cols, 1, rows);
    PinnedBuffer<float> stage[2] = {PinnedBuffer<float>(static_cast<std::size_t>(piece * cols)),
                                    PinnedBuffer<float>(rows > piece ? piece * cols : 0)};
    CudaEvent sent[2];
    // A read that throws leaves transfers in flight from the page-locked buffers: they finish
    // before the buffers are freed.
    struct DrainOnThrow {
        cudaStream_t s;
        bool done = false;
        ~DrainOnThrow() {
            if (!done) (void)cudaStreamSynchronize(s);
        }
    } drain{s};
    int p = 0;
    for (std::int64_t first = 0; first < rows; first += piece, ++p) {
        const std::int64_t count = std::min(piece, rows - first);
        const int b = p % 2;
        if (p >= 2) sent[b].synchronize();  // the transfer of piece p - 2 has left stage[b]
        float* const staged = stage[b].data();
        if (const float* resident = source.resident_rows(first, count)) {
            stage_rows(MatrixView<const float>(resident, count, cols), staged);
        } else {
            source.read_rows(first, count, staged);
        }
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dst + first * cols, staged, sizeof(float) * count * cols,
                                         cudaMemcpyHostToDevice, s));
        sent[b].record(s);
    }
    drain.done = true;
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
}

DeviceTable::DeviceTable(CudaResources& res, RowSource& source)
    : source_(&source),
      device_(res.device()),
      rows_(source.rows()),
      cols_(source.cols()),
      data_(static_cast<std::size_t>(rows_ * cols_)) {
    upload_table(res, source, data_.data());
}

}  // namespace embgeom
