// How long one process takes to get a usable CUDA device, step by step (run by
// scripts/gpu-validate profile, a fresh process per mode):
//   embgeom_cuda_start raw      the context alone (cudaFree(0)), then cuBLAS loaded as embgeom
//                               loads it (dlopen) and a handle made on a non-blocking stream;
//   embgeom_cuda_start backend  embgeom's own backend start (make_cuda_backend + prepare), what
//                               the job's "backend start" line measures.
// Why: issue 4 asks for the whole analyze of a GPT-2-size table within 1.5x the time to read
// it, ~0.075 s, and runs so far saw a backend start of 0.10-0.19 s. These numbers say how much
// of that is the driver's context, which no program avoids, and how much is embgeom's.
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "cuda/cuda_libraries.hpp"
#include "embgeom/backend.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    const bool backend = argc > 1 && std::strcmp(argv[1], "backend") == 0;
    try {
        const auto t0 = std::chrono::steady_clock::now();
        if (backend) {
            auto b = embgeom::make_cuda_backend();
            b->prepare();
            std::printf("cuda start (backend): make_cuda_backend + prepare %.3f s\n",
                        seconds_since(t0));
            return 0;
        }
        if (cudaFree(nullptr) != cudaSuccess) {
            std::fprintf(stderr, "cuda start: no usable CUDA device\n");
            return 4;
        }
        const double context = seconds_since(t0);
        const auto t1 = std::chrono::steady_clock::now();
        const embgeom::CublasApi& api = embgeom::cublas_api();
        const double load = seconds_since(t1);
        const auto t2 = std::chrono::steady_clock::now();
        cudaStream_t stream = nullptr;
        cublasHandle_t handle = nullptr;
        if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess ||
            api.cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS ||
            api.cublasSetStream(handle, stream) != CUBLAS_STATUS_SUCCESS) {
            std::fprintf(stderr, "cuda start: stream or cuBLAS handle failed\n");
            return 4;
        }
        const double handle_s = seconds_since(t2);
        std::printf(
            "cuda start (raw): context %.3f s, cuBLAS dlopen %.3f s, stream + handle %.3f s"
            ", total %.3f s\n",
            context, load, handle_s, seconds_since(t0));
        api.cublasDestroy(handle);
        cudaStreamDestroy(stream);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cuda start: %s\n", e.what());
        return 4;
    }
}
