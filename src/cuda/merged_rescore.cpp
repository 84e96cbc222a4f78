#include "cuda/merged_rescore.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/final_lists.hpp"
#include "embgeom/errors.hpp"
#include "normalize_rows.cuh"
#include "rescore_candidates.cuh"

namespace embgeom {

namespace kn = kernels;

void rescore_merged_candidates(CudaResources& res, RowSource& source, const DeviceTable* held,
                               const std::vector<std::uint8_t>& valid,
                               const std::optional<std::vector<double>>& center,
                               const std::vector<std::int64_t>& cand_index, int kc, std::int64_t k,
                               std::int64_t* out_index, float* out_sim) {
    const std::int64_t n = source.rows(), d = source.cols();
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(valid.size()) == n &&
                        static_cast<std::int64_t>(cand_index.size()) == n * kc,
                    "one flag and kc candidates per row");
    if (n <= 0 || kc <= 0 || k <= 0) return;
    DeviceScope scope(res.device());
    const cudaStream_t s = res.compute_stream();

    DeviceBuffer<float> rows(static_cast<std::size_t>(n * d));
    if (held) {
        EMBGEOM_EXPECTS(held->device() == res.device() && held->rows() == n && held->cols() == d,
                        "the held table is the source's, on the re-scoring device");
        held->copy_rows(0, n, rows.data(), s);
    } else {
        upload_table(res, source, rows.data());
    }
    DeviceBuffer<std::uint8_t> valid_dev(n), zero_row(n);
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(valid_dev.data(), valid.data(), n, cudaMemcpyHostToDevice, s));
    DeviceBuffer<double> center_dev;
    if (center) {
        EMBGEOM_EXPECTS(static_cast<std::int64_t>(center->size()) == d, "one centre per column");
        center_dev = DeviceBuffer<double>(d);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(center_dev.data(), center->data(), center_dev.bytes(),
                                         cudaMemcpyHostToDevice, s));
    }
    // The engines have checked every valid row already; the flag is only the kernel's output.
    DeviceBuffer<long long> bad_row(1);
    // The rows as every engine's pass 0 left them (the kernel works row by row, so one call over
    // the table gives the bits of the engine's block-by-block calls).
    kn::launch_normalize_rows(rows.data(), n, d, d, valid_dev.data(),
                              center ? center_dev.data() : nullptr, zero_row.data(), 0,
                              bad_row.data(), s);
    EMBGEOM_CHECK_LAUNCH(s);

    DeviceBuffer<std::int64_t> index(cand_index.size());
    DeviceBuffer<float> sims(cand_index.size());
    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(index.data(), cand_index.data(), index.bytes(), cudaMemcpyHostToDevice, s));
    kn::launch_rescore_lists(rows.data(), n, d, d, index.data(), kc, sims.data(), s);
    EMBGEOM_CHECK_LAUNCH(s);
    // The stream orders the selection after the re-score: the rows' memory can hold its output.
    copy_final_lists(s, index.data(), sims.data(), n, kc, k, true, rows.data(), rows.bytes(),
                     out_index, out_sim);
}

}  // namespace embgeom
