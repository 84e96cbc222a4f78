#pragma once
// Owning, move-only handles for every CUDA resource embgeom creates. Nothing else calls
// cudaMalloc/cudaFree, cudaMallocHost/cudaFreeHost or creates streams, events or cuBLAS handles.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "cuda/cuda_check.hpp"
#include "embgeom/errors.hpp"
#include "engine/device_memory_plan.hpp"

namespace embgeom {

/// A ResourceError naming the bytes, the device's free and total memory and what to change
/// (engine::out_of_device_memory_message), instead of cudaMalloc's bare status.
[[noreturn]] inline void throw_out_of_device_memory(std::size_t bytes) {
    (void)cudaGetLastError();
    int device = 0;
    std::size_t free_bytes = 0, total_bytes = 0;
    (void)cudaGetDevice(&device);
    (void)cudaMemGetInfo(&free_bytes, &total_bytes);
    (void)cudaGetLastError();
    throw ResourceError(
        engine::out_of_device_memory_message(bytes, device, free_bytes, total_bytes));
}

/// Sole owner of n uninitialised device elements (n == 0 holds nothing); running out of device
/// memory throws throw_out_of_device_memory's ResourceError.
template <class T>
class DeviceBuffer {
    struct Release {
        void operator()(T* p) const noexcept { EMBGEOM_CUDA_TRY_NOEXCEPT(cudaFree(p)); }
    };
    std::unique_ptr<T, Release> ptr_;
    std::size_t size_ = 0;

  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t n) : size_(n) {
        if (n == 0) return;
        T* p = nullptr;
        const cudaError_t st = cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T));
        if (st == cudaErrorMemoryAllocation) throw_out_of_device_memory(n * sizeof(T));
        EMBGEOM_CUDA_TRY(st);
        ptr_.reset(p);
    }
    T* data() noexcept { return ptr_.get(); }
    const T* data() const noexcept { return ptr_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t bytes() const noexcept { return size_ * sizeof(T); }
    /// Makes room for at least n elements, dropping the contents when it has to grow.
    void reserve_discard(std::size_t n) {
        if (n > size_) {
            ptr_.reset();
            size_ = 0;
            *this = DeviceBuffer(n);
        }
    }
};

/// Sole owner of n page-locked host elements (for asynchronous copies).
template <class T>
class PinnedBuffer {
    struct Release {
        void operator()(T* p) const noexcept { EMBGEOM_CUDA_TRY_NOEXCEPT(cudaFreeHost(p)); }
    };
    std::unique_ptr<T, Release> ptr_;
    std::size_t size_ = 0;

  public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(std::size_t n) : size_(n) {
        if (n == 0) return;
        T* p = nullptr;
        EMBGEOM_CUDA_TRY(cudaMallocHost(reinterpret_cast<void**>(&p), n * sizeof(T)));
        ptr_.reset(p);
    }
    T* data() noexcept { return ptr_.get(); }
    const T* data() const noexcept { return ptr_.get(); }
    std::size_t size() const noexcept { return size_; }
};

/// A non-blocking stream (never synchronises with the legacy default stream).
class CudaStream {
    struct Release {
        void operator()(CUstream_st* s) const noexcept {
            EMBGEOM_CUDA_TRY_NOEXCEPT(cudaStreamDestroy(s));
        }
    };
    std::unique_ptr<CUstream_st, Release> s_;

  public:
    CudaStream() {
        cudaStream_t s = nullptr;
        EMBGEOM_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        s_.reset(s);
    }
    cudaStream_t get() const noexcept { return s_.get(); }
    void synchronize() const { EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s_.get())); }
};

/// An event without timing, for ordering work between streams.
class CudaEvent {
    struct Release {
        void operator()(CUevent_st* e) const noexcept {
            EMBGEOM_CUDA_TRY_NOEXCEPT(cudaEventDestroy(e));
        }
    };
    std::unique_ptr<CUevent_st, Release> e_;

  public:
    CudaEvent() {
        cudaEvent_t e = nullptr;
        EMBGEOM_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        e_.reset(e);
    }
    cudaEvent_t get() const noexcept { return e_.get(); }
    void record(cudaStream_t s) { EMBGEOM_CUDA_TRY(cudaEventRecord(e_.get(), s)); }
    void synchronize() const { EMBGEOM_CUDA_TRY(cudaEventSynchronize(e_.get())); }
};

/// A cuBLAS handle bound to one stream.
class CublasHandle {
    struct Release {
        void operator()(cublasContext* h) const noexcept {
            EMBGEOM_CUBLAS_TRY_NOEXCEPT(cublas_api().cublasDestroy(h));
        }
    };
    std::unique_ptr<cublasContext, Release> h_;

  public:
    explicit CublasHandle(cudaStream_t stream) {
        cublasHandle_t h = nullptr;
        EMBGEOM_CUBLAS_TRY(cublas_api().cublasCreate(&h));
        h_.reset(h);
        EMBGEOM_CUBLAS_TRY(cublas_api().cublasSetStream(h, stream));
    }
    cublasHandle_t get() const noexcept { return h_.get(); }
};

/// Makes `device` current for its lifetime and restores the previous device afterwards.
class DeviceScope {
    int previous_ = -1;

  public:
    explicit DeviceScope(int device) {
        EMBGEOM_CUDA_TRY(cudaGetDevice(&previous_));
        if (previous_ != device) EMBGEOM_CUDA_TRY(cudaSetDevice(device));
    }
    ~DeviceScope() {
        int now = -1;
        if (cudaGetDevice(&now) == cudaSuccess && now != previous_)
            EMBGEOM_CUDA_TRY_NOEXCEPT(cudaSetDevice(previous_));
    }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;
};

}  // namespace embgeom
