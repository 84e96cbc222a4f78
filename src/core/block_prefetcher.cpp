#include "core/block_prefetcher.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "embgeom/errors.hpp"

namespace embgeom {
namespace {

/// 64-byte aligned plain memory (the buffers feed SGEMM and vector loads).
class AlignedAllocator final : public HostBufferAllocator {
  public:
    float* allocate(std::size_t floats) override {
        const std::size_t bytes = std::max<std::size_t>(64, (floats * sizeof(float) + 63) / 64 * 64);
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw ResourceError("out of host memory for a row buffer (" + std::to_string(bytes) +
                                    " bytes)");
        return static_cast<float*>(p);
    }
    void deallocate(float* p) noexcept override { std::free(p); }
};

}  // namespace

BlockPrefetcher::BlockPrefetcher(RowSource& source, std::vector<RowBlock> blocks, int depth,
                                 HostBufferAllocator* alloc)
    : source_(source), blocks_(std::move(blocks)), alloc_(alloc) {
    EMBGEOM_EXPECTS(depth >= 1, "prefetch depth >= 1");
    std::int64_t largest = 0;
    for (const RowBlock& b : blocks_) {
        EMBGEOM_EXPECTS(b.first >= 0 && b.count >= 0 && b.first + b.count <= source.rows(),
                        "prefetched block inside the table");
        largest = std::max(largest, b.count);
    }
    if (!alloc_) {
        own_alloc_ = std::make_unique<AlignedAllocator>();
        alloc_ = own_alloc_.get();
    }
    const std::size_t floats = static_cast<std::size_t>(std::max<std::int64_t>(1, largest * source.cols()));
    const int slots = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(depth),
                                                             std::max<std::size_t>(1, blocks_.size())));
    try {
        for (int s = 0; s < slots; ++s) {
            buffers_.push_back(alloc_->allocate(floats));
            free_slots_.push_back(s);
        }
    } catch (...) {
        for (float* p : buffers_) alloc_->deallocate(p);
        throw;
    }
    filled_.assign(blocks_.size(), -1);
    reader_ = std::thread([this] { read_loop(); });
}

BlockPrefetcher::~BlockPrefetcher() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    reader_.join();
    for (float* p : buffers_) alloc_->deallocate(p);
}

void BlockPrefetcher::read_loop() {
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        int slot;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return stop_ || !free_slots_.empty(); });
            if (stop_) return;
            slot = free_slots_.back();
            free_slots_.pop_back();
        }
        std::exception_ptr error;
        try {
            if (blocks_[i].count > 0)
                source_.read_rows(blocks_[i].first, blocks_[i].count, buffers_[slot]);
        } catch (...) {
            error = std::current_exception();
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (error) {
                failure_ = error;
                failed_at_ = i;
                free_slots_.push_back(slot);
            } else {
                filled_[i] = slot;
            }
        }
        changed_.notify_all();
        if (error) return;
    }
}

BlockPrefetcher::Lease BlockPrefetcher::next() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (next_ >= blocks_.size())
        throw ResourceError("row prefetcher: all " + std::to_string(blocks_.size()) +
                            " blocks of " + source_.describe() + " were taken");
    const std::size_t i = next_;
    changed_.wait(lock, [&] { return filled_[i] >= 0 || failed_at_ <= i; });
    if (filled_[i] < 0) std::rethrow_exception(failure_);
    ++next_;
    Lease lease;
    lease.block = blocks_[i];
    lease.slot = filled_[i];
    lease.data = buffers_[static_cast<std::size_t>(lease.slot)];
    return lease;
}

void BlockPrefetcher::release(const Lease& lease) {
    EMBGEOM_EXPECTS(lease.slot >= 0 && lease.slot < static_cast<int>(buffers_.size()),
                    "release of a prefetcher lease");
    {
        std::lock_guard<std::mutex> lock(mutex_);
        free_slots_.push_back(lease.slot);
    }
    changed_.notify_all();
}

}  // namespace embgeom
