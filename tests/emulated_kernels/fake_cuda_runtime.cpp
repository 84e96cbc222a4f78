// The emulated CUDA runtime (cuda_shim/emulated_runtime.h): two devices of kDeviceBytes each,
// whose memory is host memory. Allocations are counted per device, so cudaMemGetInfo and
// out-of-memory behave as on a GPU of that size; fresh device memory is filled with 0xFF bytes
// (NaN floats), so a result that reads memory nobody wrote does not pass by luck.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "cuda_runtime_api.h"

namespace {

constexpr int kDevices = 2;
constexpr std::size_t kDeviceBytes = std::size_t{4} << 30;
constexpr std::size_t kAlignment = 256;  // cudaMalloc's

struct Allocations {
    std::mutex mutex;
    std::map<void*, std::pair<int, std::size_t>> device;  // pointer -> (device, bytes)
    std::size_t used[kDevices] = {};
};
Allocations& allocations() {
    static Allocations a;
    return a;
}
thread_local int t_device = 0;
thread_local cudaError_t t_last = cudaSuccess;

cudaError_t record(cudaError_t e) {
    if (e != cudaSuccess) t_last = e;
    return e;
}

// Stream and event handles: distinct non-null tokens.
struct Token {
    int device;
};

}  // namespace

// EMBGEOM_EMULATED_NO_DEVICE makes the runtime list no device as a machine would (the reasons
// of core/cuda_absence.hpp): "no-driver" (no libcuda), "old-driver" (a CUDA 12.4 driver under
// this CUDA 13.0 runtime), "no-device" (a driver that sees no GPU, or CUDA_VISIBLE_DEVICES hiding
// them), "not-ready" (an NVSwitch machine whose fabric manager is not running).
namespace {
std::string no_device_mode() {
    const char* mode = std::getenv("EMBGEOM_EMULATED_NO_DEVICE");
    return mode ? mode : "";
}
}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
    const std::string mode = no_device_mode();
    *count = mode.empty() ? kDevices : 0;
    if (mode == "no-driver" || mode == "old-driver") return record(cudaErrorInsufficientDriver);
    if (mode == "no-device") return record(cudaErrorNoDevice);
    if (mode == "not-ready") return record(cudaErrorSystemNotReady);
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= kDevices) return record(cudaErrorInvalidDevice);
    t_device = device;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
    *device = t_device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (device < 0 || device >= kDevices) return record(cudaErrorInvalidDevice);
    std::memset(prop, 0, sizeof *prop);
    std::strcpy(prop->name, "embgeom emulated device");
    prop->totalGlobalMem = kDeviceBytes;
    // An H100's capability, unless a test asks for another (the check that a build's
    // architectures run on the device, core/cuda_arch_support.hpp): "8.6" for every device, or
    // "9.0,8.0" per device (a machine of two models; the last entry serves the devices after it).
    prop->major = 9;
    prop->minor = 0;
    if (const char* cc = std::getenv("EMBGEOM_EMULATED_COMPUTE_CAPABILITY")) {
        for (int entry = 0; entry <= device && *cc != '\0'; ++entry) {
            std::sscanf(cc, "%d.%d", &prop->major, &prop->minor);
            const char* comma = std::strchr(cc, ',');
            if (!comma) break;
            cc = comma + 1;
        }
    }
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
    const std::string mode = no_device_mode();
    *version = mode == "no-driver" ? 0 : mode == "old-driver" ? 12040 : 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
    *version = 13000;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
    Allocations& a = allocations();
    std::lock_guard<std::mutex> lock(a.mutex);
    *total_bytes = kDeviceBytes;
    *free_bytes = kDeviceBytes - a.used[t_device];
    return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, std::size_t bytes) {
    *p = nullptr;
    Allocations& a = allocations();
    std::lock_guard<std::mutex> lock(a.mutex);
    if (bytes > kDeviceBytes - a.used[t_device]) return record(cudaErrorMemoryAllocation);
    const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* q = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
    if (!q) return record(cudaErrorMemoryAllocation);
    std::memset(q, 0xFF, rounded);
    a.device[q] = {t_device, bytes};
    a.used[t_device] += bytes;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
    if (!p) return cudaSuccess;
    Allocations& a = allocations();
    std::lock_guard<std::mutex> lock(a.mutex);
    const auto it = a.device.find(p);
    if (it == a.device.end()) return record(cudaErrorInvalidValue);
    a.used[it->second.first] -= it->second.second;
    a.device.erase(it);
    std::free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, std::size_t bytes) {
    *p = std::malloc(bytes == 0 ? 1 : bytes);
    return *p ? cudaSuccess : record(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void* p) {
    std::free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind) {
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind, cudaStream_t) {
    if (width > dpitch || width > spitch) return record(cudaErrorInvalidValue);
    for (std::size_t r = 0; r < height; ++r)
        std::memcpy(static_cast<char*>(dst) + r * dpitch,
                    static_cast<const char*>(src) + r * spitch, width);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t) {
    if (bytes) std::memset(p, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
    // EMBGEOM_EMULATED_BUSY: the devices are listed but none starts a context, as a GPU held by
    // another process in exclusive-process mode answers the first call that needs one.
    if (std::getenv("EMBGEOM_EMULATED_BUSY")) return record(cudaErrorDevicesUnavailable);
    *stream = reinterpret_cast<cudaStream_t>(new Token{t_device});
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    delete reinterpret_cast<Token*>(stream);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
    *event = reinterpret_cast<cudaEvent_t>(new Token{t_device});
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete reinterpret_cast<Token*>(event);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() {
    const cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError() { return t_last; }
const char* cudaGetErrorName(cudaError_t error) {
    switch (error) {
        case cudaSuccess:
            return "cudaSuccess";
        case cudaErrorInvalidValue:
            return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation:
            return "cudaErrorMemoryAllocation";
        case cudaErrorInsufficientDriver:
            return "cudaErrorInsufficientDriver";
        case cudaErrorNoDevice:
            return "cudaErrorNoDevice";
        case cudaErrorInvalidDevice:
            return "cudaErrorInvalidDevice";
        case cudaErrorDevicesUnavailable:
            return "cudaErrorDevicesUnavailable";
        case cudaErrorSystemNotReady:
            return "cudaErrorSystemNotReady";
        default:
            return "cudaErrorUnknown";
    }
}
const char* cudaGetErrorString(cudaError_t error) {
    if (error == cudaErrorMemoryAllocation) return "out of memory";
    if (error == cudaErrorSystemNotReady) return "system not yet initialized";
    if (error == cudaErrorDevicesUnavailable) return "CUDA-capable device(s) is/are busy or unavailable";
    return cudaGetErrorName(error);
}
