// The CUDA backend: the per-token passes as device kernels over host blocks (or over the table held
// on the device, src/cuda/device_table.hpp, when the job holds one), the all-pairs engine
// (and its CSLS mode) in cuda_all_pairs, the covariance and its eigendecomposition in cuda_gram
// (cuBLAS, cuSOLVER), random-direction extremeness in cuda_extremeness.
// Also defines the CUDA entry points of backend.hpp for CUDA builds (CPU-only builds get
// src/backends/cuda_stub.cpp instead).
#include <algorithm>
#include <cstdlib>

#include "column_sums.cuh"
#include "core/all_devices.hpp"
#include "core/cuda_absence.hpp"
#include "core/cuda_arch_support.hpp"
#include "core/device_ids.hpp"
#include "cuda/cuda_all_pairs.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cuda_extremeness.hpp"
#include "cuda/cuda_gram.hpp"
#include "cuda/cuda_multi_device.hpp"
#include "cuda/cuda_resources.hpp"
#include "cuda/device_table.hpp"
#include "cuda/merged_rescore.hpp"
#include "cuda/upload_rows.hpp"
#include "distances_to_point.cuh"
#include "embgeom/backend.hpp"
#include "embgeom/build_info.hpp"
#include "embgeom/errors.hpp"
#include "geometry/csls.hpp"
#include "geometry/extremeness.hpp"
#include "row_norms.cuh"

namespace embgeom {
namespace {

// Host blocks go to the device in pieces of at most this many bytes, so the scratch space does
// not depend on the caller's block size.
constexpr std::size_t kPieceBytes = 64ull << 20;

class CudaBackend final : public Backend {
  public:
    /// devices: the all-pairs engines, one per entry (entries may repeat); the first one also
    /// runs every other call.
    explicit CudaBackend(const std::vector<int>& devices)
        : res_(devices.at(0)), description_(cuda_device_description(devices.at(0))) {
        for (std::size_t e = 1; e < devices.size(); ++e) {
            extra_.push_back(std::make_unique<CudaResources>(devices[e]));
            if (devices[e] != devices[0]) description_ = "";  // named per device below
        }
        if (extra_.empty()) return;
        std::string list;
        for (const int d : devices) list += (list.empty() ? "" : ",") + std::to_string(d);
        if (description_.empty())
            for (std::size_t e = 0; e < devices.size(); ++e)
                if (std::find(devices.begin(), devices.begin() + e, devices[e]) ==
                    devices.begin() + e)
                    description_ += (description_.empty() ? "" : "; ") +
                                    std::to_string(devices[e]) + ": " +
                                    cuda_device_description(devices[e]);
        description_ += ", all-pairs engines on devices " + list;
    }

    std::string name() const override { return "cuda (" + description_ + ")"; }

    void prepare() override {
        (void)res_.cublas();  // creates the context, the stream and the handle
        for (const auto& r : extra_) (void)r->cublas();
    }

    // The table is held on the first device, and only where it leaves every engine there the
    // largest plan all_pairs could make: holding it never turns a resident plan into a streamed
    // one, nor takes a re-scored path's extras away. Where only a 16-bit copy leaves that room,
    // the table is held only if its values allow one.
    bool hold_table(RowSource& source, const AllPairsOptions& engine) override {
        release_table();
        const std::int64_t rows = source.rows(), cols = source.cols();
        const std::uint64_t bytes16 = DeviceTable::bytes(rows, cols, HeldFormat::kBf16);
        if (bytes16 == 0) return false;
        DeviceScope scope(res_.device());
        std::uint64_t engines_here = 1;
        for (const auto& r : extra_) engines_here += r->device() == res_.device() ? 1 : 0;
        const std::uint64_t plan = std::min(all_pairs_device_budget(engine),
                                            all_pairs_largest_plan_bytes(rows, cols, engine));
        const std::uint64_t usable = all_pairs_usable_device_bytes(res_);
        if (usable < engines_here * plan || usable - engines_here * plan < bytes16) return false;
        HoldRequest request;
        request.allow_float32 =
            DeviceTable::bytes(rows, cols, HeldFormat::kFloat32) <= usable - engines_here * plan;
        held_ = hold_on_device(res_, source, request);
        return held_ != nullptr;
    }

    void release_table() override { held_.reset(); }

    bool holds_table(const RowSource& source) const override {
        return held_ && &held_->source() == &source;
    }

    std::string held_table_dtype() const override {
        return held_ ? to_string(held_->format()) : std::string();
    }

    void row_norms_and_sums(const TableBlock& block, float* norms, std::uint8_t* finite,
                            double* column_sums) override {
        const std::int64_t n = block.rows.rows, d = block.rows.cols;
        if (n <= 0) return;
        if (d == 0) {  // empty rows: finite, norm 0, nothing to sum
            std::fill(norms, norms + n, 0.0f);
            std::fill(finite, finite + n, std::uint8_t{1});
            return;
        }
        DeviceScope scope(res_.device());
        const cudaStream_t s = res_.compute_stream();
        finite_.reserve_discard(piece_rows(d, n));
        sums_.reserve_discard(d);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(sums_.data(), column_sums, sizeof(double) * d,
                                         cudaMemcpyHostToDevice, s));
        // Pieces in row order keep the column sums in row order.
        for_each_piece(block, s, [&](std::int64_t first, std::int64_t count, const float* x) {
            kernels::launch_row_norms(x, count, d, d, norms_.data(), finite_.data(), s);
            EMBGEOM_CHECK_LAUNCH(s);
            kernels::launch_column_sums(x, count, d, d, finite_.data(), sums_.data(), s);
            EMBGEOM_CHECK_LAUNCH(s);
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(norms + first, norms_.data(), sizeof(float) * count,
                                             cudaMemcpyDeviceToHost, s));
            EMBGEOM_CUDA_TRY(
                cudaMemcpyAsync(finite + first, finite_.data(), count, cudaMemcpyDeviceToHost, s));
        });
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(column_sums, sums_.data(), sizeof(double) * d,
                                         cudaMemcpyDeviceToHost, s));
        EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
    }

    void distances_to_points(const TableBlock& block, const std::vector<const double*>& points,
                             const std::vector<float*>& out) override {
        EMBGEOM_EXPECTS(points.size() == out.size(), "one output per point");
        const std::int64_t n = block.rows.rows, d = block.rows.cols;
        const std::int64_t np = static_cast<std::int64_t>(points.size());
        if (n <= 0 || np == 0) return;
        if (d == 0) {
            for (float* o : out) std::fill(o, o + n, 0.0f);
            return;
        }
        DeviceScope scope(res_.device());
        const cudaStream_t s = res_.compute_stream();
        point_.reserve_discard(static_cast<std::size_t>(np * d));
        for (std::int64_t p = 0; p < np; ++p)
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(point_.data() + p * d, points[p], sizeof(double) * d,
                                             cudaMemcpyHostToDevice, s));
        // One upload per piece for every point: the kernels re-read it from device memory.
        distances_.reserve_discard(static_cast<std::size_t>(np * piece_rows(d, n)));
        for_each_piece(block, s, [&](std::int64_t first, std::int64_t count, const float* x) {
            for (std::int64_t p = 0; p < np; ++p) {
                float* const dev_out = distances_.data() + p * count;
                kernels::launch_distances_to_point(x, count, d, d, point_.data() + p * d, dev_out,
                                                   s);
                EMBGEOM_CHECK_LAUNCH(s);
                EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out[p] + first, dev_out, sizeof(float) * count,
                                                 cudaMemcpyDeviceToHost, s));
            }
        });
    }

    AllPairsResult all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const AllPairsOptions& opt) override {
        // One engine (no --devices list) runs cuda_all_pairs there.
        return cuda_multi_device_all_pairs(engines(), source, valid, opt, held(source));
    }

    // A share of a job split between processes runs on this backend's one engine, deferring any
    // re-score (the best K' of every process's candidates are the one-process candidates).
    AllPairsResult all_pairs_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                   const AllPairsOptions& opt, const WorkShare& share,
                                   AllPairsPartial& partial) override {
        EngineShare engine_share = one_engine_share(share);
        engine_share.defer_rescore = true;
        partial = AllPairsPartial{};
        return cuda_all_pairs_share(res_, source, valid, opt, engine_share, &partial,
                                    held(source));
    }

    std::uint64_t all_pairs_plan_bytes() override { return all_pairs_usable_device_bytes(res_); }

    void rescore_candidates(RowSource& source, const std::vector<std::uint8_t>& valid,
                            const std::optional<std::vector<double>>& center,
                            const std::vector<std::int64_t>& cand_index, int kc, std::int64_t k,
                            std::int64_t* out_index, float* out_sim) override {
        rescore_merged_candidates(res_, source, held(source), valid, center, cand_index, kc, k,
                                  out_index, out_sim);
    }

    CslsNeighbors csls_neighbors_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                       const std::vector<float>& radius, std::int64_t k,
                                       const AllPairsOptions& opt,
                                       const WorkShare& share) override {
        const EngineShare engine_share = one_engine_share(share);
        const std::vector<std::uint8_t> mask =
            checked_csls_mask(source.rows(), valid, radius, k, opt.block_rows);
        return cuda_csls_neighbors_share(res_, source, mask, radius, k, opt, engine_share,
                                         held(source));
    }

    std::unique_ptr<GramAccumulator> gram_accumulator(std::int64_t d,
                                                      const std::vector<double>& shift) override {
        return make_cuda_gram_accumulator(res_, d, shift);
    }

    void symmetric_eigen(std::int64_t d, std::vector<double>& a,
                         std::vector<double>& eigenvalues) override {
        if (!solver_) {
            DeviceScope scope(res_.device());
            solver_ = std::make_unique<CusolverHandle>(res_.compute_stream());
        }
        cuda_symmetric_eigen(res_, *solver_, d, a, eigenvalues);
    }

    CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                                 const std::vector<float>& radius, std::int64_t k,
                                 const AllPairsOptions& opt) override {
        return cuda_multi_device_csls_neighbors(engines(), source, valid, radius, k, opt,
                                                held(source));
    }

    Extremeness extremeness(RowSource& source, const std::vector<std::uint8_t>& valid,
                            const ExtremenessOptions& opt) override {
        return cuda_extremeness(res_, source, valid, opt, held(source));
    }

  private:
    // The engine share of a process's share; a backend of several engines (--devices) runs none.
    EngineShare one_engine_share(const WorkShare& share) const {
        if (!extra_.empty())
            throw UsageError("--devices lists " + std::to_string(extra_.size() + 1) +
                             " GPUs, but in an MPI job each rank runs one GPU: start one rank per "
                             "GPU and leave --devices out (each rank takes the GPU of its local "
                             "rank)");
        EngineShare engine_share;
        engine_share.index = share.index;
        engine_share.count = share.count;
        engine_share.usable_bytes = share.device_bytes;
        return engine_share;
    }

    // The resources of every --devices entry, in order: one engine each.
    std::vector<CudaResources*> engines() {
        std::vector<CudaResources*> all{&res_};
        for (const auto& r : extra_) all.push_back(r.get());
        return all;
    }

    const DeviceTable* held(const RowSource& source) const {
        return holds_table(source) ? held_.get() : nullptr;
    }

    static std::int64_t piece_rows(std::int64_t d, std::int64_t n) {
        const std::int64_t rows =
            static_cast<std::int64_t>(kPieceBytes / sizeof(float)) / std::max<std::int64_t>(d, 1);
        return std::clamp<std::int64_t>(rows, 1, n);
    }

    // Packs the rows (leading dimension ld) densely into x_, through a page-locked staging buffer
    // (stage_rows). The staging buffer is refilled only after for_each_piece has synchronised the
    // stream.
    void upload(MatrixView<const float> rows, cudaStream_t s) {
        const std::int64_t n = rows.rows, d = rows.cols;
        if (n <= 0 || d <= 0) return;
        if (staging_.size() < static_cast<std::size_t>(n * d))
            staging_ = PinnedBuffer<float>(static_cast<std::size_t>(n * d));
        stage_rows(rows, staging_.data());
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(x_.data(), staging_.data(), sizeof(float) * n * d,
                                         cudaMemcpyHostToDevice, s));
    }

    // The per-token passes' loop: the block's rows in pieces of at most kPieceBytes, in row
    // order, each uploaded into x_ (norms_ sized for a piece) or, when the block's table is held,
    // read where it lies; then work(first, count, rows) enqueues the kernels and the copies back,
    // and the piece is waited for before x_ is refilled.
    template <class Work>
    void for_each_piece(const TableBlock& block, cudaStream_t s, Work&& work) {
        const std::int64_t n = block.rows.rows, d = block.rows.cols;
        const DeviceTable* table = block.source ? held(*block.source) : nullptr;
        if (table)
            EMBGEOM_EXPECTS(
                block.first >= 0 && block.first + n <= table->rows() && d == table->cols(),
                "a block of the held table lies inside it");
        else
            EMBGEOM_EXPECTS(block.rows.data != nullptr, "a block of a table not held has rows");
        const std::int64_t piece = piece_rows(d, n);
        // A 16-bit copy is unpacked into x_, piece by piece.
        const bool in_place = table && table->format() == HeldFormat::kFloat32;
        if (!in_place) x_.reserve_discard(static_cast<std::size_t>(piece * d));
        norms_.reserve_discard(piece);
        for (std::int64_t first = 0; first < n; first += piece) {
            const std::int64_t count = std::min(piece, n - first);
            if (in_place) {
                work(first, count, table->float_row(block.first + first));
            } else {
                if (table)
                    table->copy_rows(block.first + first, count, x_.data(), s);
                else
                    upload(block.rows.slice_rows(first, count), s);
                work(first, count, x_.data());
            }
            EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
        }
    }

    CudaResources res_;
    std::vector<std::unique_ptr<CudaResources>> extra_;  // the other --devices entries
    std::string description_;
    DeviceBuffer<float> x_, norms_, distances_;
    PinnedBuffer<float> staging_;  // one piece of host rows (see upload)
    DeviceBuffer<std::uint8_t> finite_;
    DeviceBuffer<double> sums_, point_;
    std::unique_ptr<CusolverHandle> solver_;  // created on first use, like the cuBLAS handle
    std::unique_ptr<DeviceTable> held_;       // hold_table's copy, on the first device
};

}  // namespace

namespace {

// The device count and, when it is 0, why (core/cuda_absence.hpp). Every status counts as "use the
// CPU": a GPU that cannot be listed now (a fabric manager not running, every GPU in exclusive use)
// must not stop `--backend auto`, and `--backend cuda` reports the reason.
struct DeviceCensus {
    int count = 0;
    std::string why_none;
};

DeviceCensus take_device_census() {
    int n = 0;
    const cudaError_t st = cudaGetDeviceCount(&n);
    if (st == cudaSuccess && n > 0) return {n, ""};
    (void)cudaGetLastError();
    using Kind = CudaDeviceCountFailure::Kind;
    CudaDeviceCountFailure f;
    f.kind = st == cudaSuccess || st == cudaErrorNoDevice ? Kind::kNoDevice
             : st == cudaErrorInsufficientDriver          ? Kind::kInsufficientDriver
                                                          : Kind::kOther;
    f.error_name = cudaGetErrorName(st);
    f.error_text = cudaGetErrorString(st);
    if (cudaDriverGetVersion(&f.driver_version) != cudaSuccess) f.driver_version = 0;
    if (cudaRuntimeGetVersion(&f.runtime_version) != cudaSuccess) f.runtime_version = 0;
    (void)cudaGetLastError();
    if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) f.visible_devices = visible;
    return {0, no_cuda_device_reason(f)};
}

}  // namespace

int cuda_device_count() { return take_device_census().count; }

std::string cuda_no_device_reason() { return take_device_census().why_none; }

bool cuda_built() { return true; }

std::string cuda_devices_unusable_reason(const std::vector<int>& devices) {
    const std::vector<int> ids = devices.empty() ? std::vector<int>{0} : devices;
    for (const int id : ids) {
        cudaDeviceProp prop{};
        EMBGEOM_CUDA_TRY(cudaGetDeviceProperties(&prop, id));
        if (cuda_archs_run_on(kCudaArchitectures, prop.major, prop.minor)) continue;
        const std::string cc = std::to_string(prop.major) + "." + std::to_string(prop.minor);
        return "CUDA device " + std::to_string(id) + " (" + prop.name + ", compute capability " +
               cc + ") cannot run this build's kernels (built for CUDA architectures " +
               kCudaArchitectures +
               "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(prop.major) +
               std::to_string(prop.minor) + " to add it)";
    }
    return "";
}

namespace {

DeviceModel model_of(int id, const cudaDeviceProp& prop) {
    return DeviceModel{id, prop.name, prop.major, prop.minor,
                       cuda_archs_run_on(kCudaArchitectures, prop.major, prop.minor)};
}

}  // namespace

std::vector<int> cuda_all_devices(std::string* left_out) {
    std::vector<DeviceModel> models;
    for (int id = 0, n = cuda_device_count(); id < n; ++id) {
        cudaDeviceProp prop{};
        EMBGEOM_CUDA_TRY(cudaGetDeviceProperties(&prop, id));
        models.push_back(model_of(id, prop));
    }
    AllDevicesChoice choice = choose_all_devices(models);
    if (left_out) *left_out = std::move(choice.left_out);
    return choice.ids;
}

CudaMachineReport cuda_machine_report() {
    CudaMachineReport report;
    (void)cudaRuntimeGetVersion(&report.runtime_version);
    if (cudaDriverGetVersion(&report.driver_version) != cudaSuccess) report.driver_version = 0;
    (void)cudaGetLastError();
    const DeviceCensus census = take_device_census();
    report.no_device_reason = census.why_none;
    std::vector<DeviceModel> models;
    for (int id = 0; id < census.count; ++id) {
        CudaDeviceReport d;
        d.id = id;
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, id) != cudaSuccess) {
            (void)cudaGetLastError();
            d.start_error = "the runtime could not describe it";
            report.devices.push_back(d);
            continue;
        }
        models.push_back(model_of(id, prop));
        d.name = prop.name;
        d.major = prop.major;
        d.minor = prop.minor;
        d.total_bytes = prop.totalGlobalMem;
        d.runs_build = models.back().runs_build;
        if (d.runs_build) try {
                CudaResources started(id);
                (void)started.cublas();
                DeviceScope scope(id);
                std::size_t free_bytes = 0, total_bytes = 0;
                EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
                d.free_bytes = free_bytes;
            } catch (const std::exception& e) {
                d.start_error = e.what();
            }
        report.devices.push_back(d);
    }
    if (census.count > 0) try {
            report.cublas = cublas_version_text();
        } catch (const std::exception& e) {
            report.cublas_error = e.what();
        }
    AllDevicesChoice all = choose_all_devices(models);
    report.all_devices = std::move(all.ids);
    report.all_devices_left_out = std::move(all.left_out);
    return report;
}

std::unique_ptr<Backend> make_cuda_backend() {
    if (const DeviceCensus census = take_device_census(); census.count == 0)
        throw ResourceError("--backend cuda: no usable CUDA device: " + census.why_none);
    int device = 0;
    EMBGEOM_CUDA_TRY(cudaGetDevice(&device));
    return std::make_unique<CudaBackend>(std::vector<int>{device});
}

std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>& devices) {
    if (devices.empty()) return make_cuda_backend();
    const DeviceCensus census = take_device_census();
    if (census.count == 0)
        throw ResourceError("--backend cuda: no usable CUDA device: " + census.why_none);
    check_device_ids(devices, census.count);
    return std::make_unique<CudaBackend>(devices);
}

}  // namespace embgeom
