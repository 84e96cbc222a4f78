#include "cuda/cuda_extremeness.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "direction_extremes.cuh"
#include "embgeom/errors.hpp"
#include "engine/device_memory_plan.hpp"
#include "geometry/block_stream.hpp"
#include "geometry/extremeness.hpp"
#include "projection_rows.cuh"

namespace embgeom {
namespace {

namespace kn = kernels;

using engine::kDeviceReserve;
// Tiles of 8192 rows x 8192 directions (256 MiB of projections) keep the GEMMs at full speed;
// smaller ones are tried down to 256 when memory is short.
constexpr std::int64_t kMaxTile = 8192;
constexpr std::int64_t kMinTile = 256;

std::string mib(std::uint64_t bytes) { return engine::mib_text(bytes); }

struct MemoryPlan {
    std::int64_t V = 0, d = 0, M = 0;
    bool centred = false;

    std::uint64_t directions() const { return 4ull * M * d; }
    std::uint64_t fixed() const {
        return directions() + 24ull * M + static_cast<std::uint64_t>(V) + (centred ? 8ull * d : 0);
    }
    std::uint64_t tile(std::int64_t rows, std::int64_t dirs) const {
        return static_cast<std::uint64_t>(rows) * (4ull * d + 8) + 4ull * rows * dirs;
    }
};

}  // namespace

Extremeness cuda_extremeness(CudaResources& res, RowSource& source,
                             const std::vector<std::uint8_t>& valid, const ExtremenessOptions& opt,
                             const DeviceTable* held) {
    const std::int64_t V = source.rows(), d = source.cols(), M = opt.directions;
    check_extremeness_inputs(source, valid, opt);  // the CPU's contract
    EMBGEOM_EXPECTS(d <= INT_MAX, "row width fits cuBLAS");
    if (held)
        EMBGEOM_EXPECTS(held->rows() == V && held->cols() == d && held->device() == res.device(),
                        "the held table is the source's, on the engine's device");

    const std::vector<std::uint8_t> mask = detail::valid_mask_or_all(valid, V);
    Extremeness out;
    out.counts.assign(static_cast<std::size_t>(V), 0);
    out.argmax.assign(static_cast<std::size_t>(M), -1);
    out.argmin.assign(static_cast<std::size_t>(M), -1);
    if (std::none_of(mask.begin(), mask.end(), [](std::uint8_t v) { return v != 0; })) return out;

    DeviceScope scope(res.device());
    const cudaStream_t s = res.compute_stream();
    const cublasHandle_t h = res.cublas();

    MemoryPlan p{V, d, M, opt.center.has_value()};
    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::uint64_t usable = free_bytes > kDeviceReserve ? free_bytes - kDeviceReserve : 0;
    std::int64_t tr = 0, tm = 0;
    for (std::int64_t t = kMaxTile; t >= kMinTile; t /= 2) {
        const std::int64_t r = std::min(t, V), m = std::min(t, M);
        if (p.fixed() + p.tile(r, m) <= usable) {
            tr = r;
            tm = m;
            break;
        }
    }
    if (tr == 0) {
        const std::int64_t r = std::min(kMinTile, V), m = std::min(kMinTile, M);
        throw ResourceError("CUDA extremeness: not enough device memory: the " + std::to_string(M) +
                            " x " + std::to_string(d) + " directions (" + mib(p.directions()) +
                            ") and the smallest tiles (" + std::to_string(r) + " rows x " +
                            std::to_string(m) + " directions, " + mib(p.tile(r, m)) + ") need " +
                            mib(p.fixed() + p.tile(r, m)) + " but " + mib(free_bytes) +
                            " of device memory are free, less a " + mib(kDeviceReserve) +
                            " reserve; lower --simplex-directions or use --backend cpu");
    }

    // Generated only once they are known to fit the device (the host holds them too, as on the
    // CPU).
    const std::vector<float> dirs = random_unit_directions(M, d, opt.seed, opt.stream.threads);
    DeviceBuffer<float> dirs_dev(static_cast<std::size_t>(M * d));
    DeviceBuffer<float> rows_dev(static_cast<std::size_t>(tr * d));
    DeviceBuffer<float> proj_dev(static_cast<std::size_t>(tm * tr));
    DeviceBuffer<std::uint8_t> valid_dev(static_cast<std::size_t>(V));
    DeviceBuffer<double> center_dev(opt.center ? static_cast<std::size_t>(d) : 0);
    DeviceBuffer<std::uint64_t> hash_dev(static_cast<std::size_t>(tr));
    DeviceBuffer<float> max_value(static_cast<std::size_t>(M)),
        min_value(static_cast<std::size_t>(M));
    DeviceBuffer<std::int64_t> max_index(static_cast<std::size_t>(M)),
        min_index(static_cast<std::size_t>(M));
    PinnedBuffer<float> stage(held ? 0 : static_cast<std::size_t>(tr * d));
    PinnedBuffer<std::uint64_t> hash_stage(static_cast<std::size_t>(tr));

    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(dirs_dev.data(), dirs.data(), dirs_dev.bytes(), cudaMemcpyHostToDevice, s));
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(valid_dev.data(), mask.data(), valid_dev.bytes(),
                                     cudaMemcpyHostToDevice, s));
    if (opt.center)
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(center_dev.data(), opt.center->data(), center_dev.bytes(),
                                         cudaMemcpyHostToDevice, s));
    kn::launch_extremes_init(max_value.data(), max_index.data(), min_value.data(), min_index.data(),
                             M, s);
    EMBGEOM_CHECK_LAUNCH(s);

    std::vector<std::uint64_t> hashes(static_cast<std::size_t>(V), 0);
    const std::int64_t read = opt.stream.block_rows > 0 ? opt.stream.block_rows : tr;
    const float one = 1.0f, zero = 0.0f;
    for (std::int64_t row0 = 0; row0 < V; row0 += tr) {
        const std::int64_t count = std::min(tr, V - row0);
        if (std::none_of(mask.begin() + row0, mask.begin() + row0 + count,
                         [](std::uint8_t v) { return v != 0; }))
            continue;
        // projection_rows works in place: the held rows are copied, never changed.
        if (held) {
            held->copy_rows(row0, count, rows_dev.data(), s);
        } else {
            for (std::int64_t r = 0; r < count; r += read)
                source.read_rows(row0 + r, std::min(read, count - r), stage.data() + r * d);
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(rows_dev.data(), stage.data(),
                                             sizeof(float) * count * d, cudaMemcpyHostToDevice, s));
        }
        kn::launch_projection_rows(rows_dev.data(), count, d, d, valid_dev.data() + row0,
                                   center_dev.data(), hash_dev.data(), s);
        EMBGEOM_CHECK_LAUNCH(s);
        for (std::int64_t q0 = 0; q0 < M; q0 += tm) {
            const std::int64_t mq = std::min(tm, M - q0);
            // Row-major P[mq x count] = U_q Y^T is column-major P^T = Y U_q^T (faiss).
            EMBGEOM_CUBLAS_TRY(cublas_api().cublasSgemm(
                h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(count), static_cast<int>(mq),
                static_cast<int>(d), &one, rows_dev.data(), static_cast<int>(d),
                dirs_dev.data() + q0 * d, static_cast<int>(d), &zero, proj_dev.data(),
                static_cast<int>(count)));
            kn::launch_direction_extremes(proj_dev.data(), count, mq, count, row0,
                                          valid_dev.data() + row0, max_value.data() + q0,
                                          max_index.data() + q0, min_value.data() + q0,
                                          min_index.data() + q0, s);
            EMBGEOM_CHECK_LAUNCH(s);
        }
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(hash_stage.data(), hash_dev.data(),
                                         sizeof(std::uint64_t) * count, cudaMemcpyDeviceToHost, s));
        EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));  // the staging buffers are refilled next
        std::copy_n(hash_stage.data(), count, hashes.begin() + row0);
    }
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.argmax.data(), max_index.data(), max_index.bytes(),
                                     cudaMemcpyDeviceToHost, s));
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.argmin.data(), min_index.data(), min_index.bytes(),
                                     cudaMemcpyDeviceToHost, s));
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));

    settle_extremes(source, mask, hashes, out);
    return out;
}

}  // namespace embgeom
