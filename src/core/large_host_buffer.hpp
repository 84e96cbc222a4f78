#pragma once
// A large host array (a cached table, a row block) allocated without zero-filling: a std::vector
// writes every page once with zeros before the program writes it again, and first touches of fresh
// pages are costly on virtual machines (perf of a 128256 x 4096 analyze here: over half the time in
// the kernel's clear_page under those faults). Cache-line aligned. Transparent huge pages were
// tried (madvise) and gave no steady gain in the same runs, so they are left to the system's
// default. Allocation failure becomes the project's one-line ResourceError. RAII, move-only.
#include <cstddef>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

#include "embgeom/errors.hpp"

namespace embgeom {

template <class T>
class LargeHostBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "holds plain numbers, left uninitialised");

  public:
    LargeHostBuffer() = default;
    /// n elements, uninitialised. what names the array in the out-of-memory message.
    LargeHostBuffer(std::size_t n, const char* what) : size_(n) {
        if (n == 0) return;
        const std::size_t bytes = n * sizeof(T);
        void* p = nullptr;
        if (posix_memalign(&p, 64, bytes) != 0 || !p)
            throw ResourceError(std::string("out of memory allocating ") + what + " (" +
                                std::to_string(bytes >> 20) + " MiB)");
        data_ = static_cast<T*>(p);
    }
    LargeHostBuffer(LargeHostBuffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    LargeHostBuffer& operator=(LargeHostBuffer&& o) noexcept {
        if (this != &o) {
            std::free(data_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    LargeHostBuffer(const LargeHostBuffer&) = delete;
    LargeHostBuffer& operator=(const LargeHostBuffer&) = delete;
    ~LargeHostBuffer() { std::free(data_); }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }

  private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace embgeom
