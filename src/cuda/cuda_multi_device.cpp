#include "cuda/cuda_multi_device.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "cuda/cuda_all_pairs.hpp"
#include "cuda/merged_rescore.hpp"
#include "embgeom/errors.hpp"
#include "engine/all_pairs_merge.hpp"
#include "engine/precision_policy.hpp"
#include "geometry/csls.hpp"

namespace embgeom {
namespace {

// Sources (HDF5 above all) and sinks are not thread-safe: one call at a time.
class LockedRowSource final : public RowSource {
  public:
    explicit LockedRowSource(RowSource& s) : s_(s) {}
    std::int64_t rows() const override { return s_.rows(); }
    std::int64_t cols() const override { return s_.cols(); }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override {
        const std::lock_guard<std::mutex> lock(m_);
        s_.read_rows(first, count, out);
    }
    std::string describe() const override { return s_.describe(); }

  private:
    RowSource& s_;
    std::mutex m_;
};

class LockedSink final : public MatrixSink {
  public:
    explicit LockedSink(MatrixSink& s) : s_(s) {}
    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        const std::lock_guard<std::mutex> lock(m_);
        s_.write_tile(row0, col0, tile);
    }

  private:
    MatrixSink& s_;
    std::mutex m_;
};

// What the engine threads tell the calling thread.
struct Board {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::int64_t> done;  // tiles done, per engine
    std::int64_t total = 0;          // tile pairs of the whole triangle
    bool changed = false;
    std::size_t finished = 0;
    std::exception_ptr error;  // the first exception of any engine
};

// The least device memory any engine may plan with: free memory less the reserve, split evenly
// between the engines sharing a device.
std::uint64_t common_usable_bytes(const std::vector<CudaResources*>& devices) {
    std::map<int, std::pair<CudaResources*, std::uint64_t>> by_device;  // first resources, engines
    for (CudaResources* r : devices) {
        auto& e = by_device[r->device()];
        if (!e.first) e.first = r;
        ++e.second;
    }
    std::uint64_t usable = std::numeric_limits<std::uint64_t>::max();
    for (const auto& [device, e] : by_device)
        usable = std::min(usable, all_pairs_usable_device_bytes(*e.first) / e.second);
    return usable;
}

// The engines' shares added into the first (engine/all_pairs_merge.hpp); with deferred
// re-scoring, sums[0] ends with the merged candidates: the best K' of every row over the
// engines' candidate lists, the candidates one engine would have kept.
AllPairsResult merge(std::vector<AllPairsResult>& parts, std::vector<AllPairsPartial>& sums,
                     const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt) {
    AllPairsResult out = std::move(parts[0]);  // row means, S, valid rows: the same on every engine
    for (std::size_t e = 1; e < parts.size(); ++e)
        engine::absorb_share(out, sums[0], parts[e], sums[e], opt);
    engine::finish_shares(out, sums[0], valid, opt);
    return out;
}

using Progress = std::function<void(std::int64_t done, std::int64_t total)>;

// Runs work(e, progress_e) for every engine e on a thread of its own. progress, when set, is
// called on this thread with the tiles all engines have done together (progress_e is what engine
// e reports to; null when progress is). Rethrows the first exception of any engine once every
// engine has finished.
void run_engines(std::size_t engines, const Progress& progress,
                 const std::function<void(std::size_t, Progress)>& work) {
    Board board;
    board.done.assign(engines, 0);
    const auto run = [&](std::size_t e) {
        try {
            Progress mine;
            if (progress)
                mine = [&board, e](std::int64_t done, std::int64_t total) {
                    const std::lock_guard<std::mutex> lock(board.m);
                    board.done[e] = done;
                    board.total = total;
                    board.changed = true;
                    board.cv.notify_all();
                };
            work(e, mine);
        } catch (...) {
            const std::lock_guard<std::mutex> lock(board.m);
            if (!board.error) board.error = std::current_exception();
        }
        const std::lock_guard<std::mutex> lock(board.m);
        ++board.finished;
        board.cv.notify_all();
    };

    std::vector<std::thread> threads;
    threads.reserve(engines);
    try {
        for (std::size_t e = 0; e < engines; ++e) threads.emplace_back(run, e);
    } catch (...) {  // no thread for the rest: count them as finished, with the error
        const std::lock_guard<std::mutex> lock(board.m);
        if (!board.error) board.error = std::current_exception();
        board.finished += engines - threads.size();
    }
    {
        std::unique_lock<std::mutex> lock(board.m);
        for (;;) {
            board.cv.wait(lock, [&] { return board.changed || board.finished == engines; });
            if (board.changed) {
                board.changed = false;
                std::int64_t done = 0;
                for (const std::int64_t d : board.done) done += d;
                const std::int64_t total = board.total;
                if (!board.error) {
                    lock.unlock();
                    progress(done, total);
                    lock.lock();
                    continue;  // reports that came in meanwhile are read before leaving
                }
            }
            if (board.finished == engines) break;
        }
    }
    for (std::thread& t : threads) t.join();
    if (board.error) std::rethrow_exception(board.error);
}

// The rows engine e copies from: the held table when it lies on e's device.
const DeviceTable* held_on(const DeviceTable* held, const CudaResources& res) {
    return held && held->device() == res.device() ? held : nullptr;
}

// Engine e's share of engines: its tile pairs, planned within usable bytes, the same for every
// engine (common_usable_bytes, measured before any engine allocates) so all make the same plan.
EngineShare share_of(std::size_t engines, std::size_t e, std::uint64_t usable) {
    EngineShare share;
    share.count = static_cast<int>(engines);
    share.index = static_cast<int>(e);
    share.usable_bytes = usable;
    return share;
}

}  // namespace

AllPairsResult cuda_multi_device_all_pairs(const std::vector<CudaResources*>& devices,
                                           RowSource& source,
                                           const std::vector<std::uint8_t>& valid,
                                           const AllPairsOptions& opt, const DeviceTable* held) {
    EMBGEOM_EXPECTS(!devices.empty(), "at least one device");
    if (devices.size() == 1)
        return cuda_all_pairs(*devices[0], source, valid, opt, held_on(held, *devices[0]));
    const auto start = std::chrono::steady_clock::now();

    const std::size_t engines = devices.size();
    const std::uint64_t usable = common_usable_bytes(devices);
    LockedRowSource locked_source(source);
    std::optional<LockedSink> locked_sink;
    if (opt.matrix) locked_sink.emplace(*opt.matrix);
    std::vector<AllPairsResult> parts(engines);
    std::vector<AllPairsPartial> sums(engines);
    run_engines(engines, opt.progress, [&](std::size_t e, Progress progress) {
        AllPairsOptions o = opt;
        o.matrix = locked_sink ? &*locked_sink : nullptr;
        o.progress = std::move(progress);
        EngineShare share = share_of(engines, e, usable);
        share.defer_rescore = true;
        parts[e] = cuda_all_pairs_share(*devices[e], locked_source, valid, o, share, &sums[e],
                                        held_on(held, *devices[e]));
    });

    AllPairsResult out = merge(parts, sums, valid, opt);
    // A re-scored product: the merged candidates are re-scored once, on the first device.
    if (engine::is_rescored(out.precision) && sums[0].candidate_width > 0) {
        rescore_merged_candidates(*devices[0], source, held_on(held, *devices[0]), valid,
                                  opt.center, sums[0].candidate_index, sums[0].candidate_width,
                                  out.k,
                                  out.neighbor_index.data(), out.neighbor_sim.data());
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

CslsNeighbors cuda_multi_device_csls_neighbors(const std::vector<CudaResources*>& devices,
                                               RowSource& source,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<float>& radius, std::int64_t k,
                                               const AllPairsOptions& opt,
                                               const DeviceTable* held) {
    EMBGEOM_EXPECTS(!devices.empty(), "at least one device");
    if (devices.size() == 1)
        return cuda_csls_neighbors(*devices[0], source, valid, radius, k, opt,
                                   held_on(held, *devices[0]));
    const std::vector<std::uint8_t> mask =
        checked_csls_mask(source.rows(), valid, radius, k, opt.block_rows);  // the CPU's contract

    const std::size_t engines = devices.size();
    const std::uint64_t usable = common_usable_bytes(devices);
    LockedRowSource locked_source(source);
    std::vector<CslsNeighbors> parts(engines);
    run_engines(engines, nullptr, [&](std::size_t e, Progress) {
        parts[e] =
            cuda_csls_neighbors_share(*devices[e], locked_source, mask, radius, k, opt,
                                      share_of(engines, e, usable), held_on(held, *devices[e]));
    });
    CslsNeighbors out = std::move(parts[0]);
    for (std::size_t e = 1; e < engines; ++e) engine::absorb_csls_share(out, parts[e]);
    return out;
}

}  // namespace embgeom
