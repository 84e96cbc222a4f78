#include "cuda/cuda_libraries.hpp"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include "embgeom/errors.hpp"

// The symbol a name stands for after the headers' macros (cublasSgemm -> "cublasSgemm_v2").
#define EMBGEOM_SYMBOL_NAME_(x) #x
#define EMBGEOM_SYMBOL_NAME(x) EMBGEOM_SYMBOL_NAME_(x)
#define EMBGEOM_RESOLVE(lib, soname, api, fn) \
    resolve_symbol(lib, soname, (api).fn, EMBGEOM_SYMBOL_NAME(fn))

namespace embgeom {
namespace {

template <class Fn>
void resolve_symbol(void* lib, const std::string& soname, Fn& fn, const char* name) {
    fn = reinterpret_cast<Fn>(dlsym(lib, name));
    if (!fn)
        throw ResourceError(soname + " has no " + name + " (a library older than the headers?)");
}

std::string cublas_soname() { return "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR); }

CublasApi load_cublas() {
    const std::string soname = cublas_soname();
    void* lib = open_cuda_library(soname, "the CUDA backend needs cuBLAS");
    CublasApi api;
    EMBGEOM_RESOLVE(lib, soname, api, cublasCreate);
    EMBGEOM_RESOLVE(lib, soname, api, cublasDestroy);
    EMBGEOM_RESOLVE(lib, soname, api, cublasSetStream);
    EMBGEOM_RESOLVE(lib, soname, api, cublasSetMathMode);
    EMBGEOM_RESOLVE(lib, soname, api, cublasSetPointerMode);
    EMBGEOM_RESOLVE(lib, soname, api, cublasSetAtomicsMode);
    EMBGEOM_RESOLVE(lib, soname, api, cublasGetProperty);
    EMBGEOM_RESOLVE(lib, soname, api, cublasGetStatusName);
    EMBGEOM_RESOLVE(lib, soname, api, cublasGetStatusString);
    EMBGEOM_RESOLVE(lib, soname, api, cublasSgemm);
    EMBGEOM_RESOLVE(lib, soname, api, cublasGemmEx);
    EMBGEOM_RESOLVE(lib, soname, api, cublasDsyrk);
    return api;
}

CusolverApi load_cusolver() {
    const std::string soname = "libcusolver.so." + std::to_string(CUSOLVER_VER_MAJOR);
    void* lib = open_cuda_library(soname, "the CUDA eigendecomposition needs cuSOLVER");
    CusolverApi api;
    EMBGEOM_RESOLVE(lib, soname, api, cusolverDnCreate);
    EMBGEOM_RESOLVE(lib, soname, api, cusolverDnDestroy);
    EMBGEOM_RESOLVE(lib, soname, api, cusolverDnSetStream);
    EMBGEOM_RESOLVE(lib, soname, api, cusolverDnDsyevd_bufferSize);
    EMBGEOM_RESOLVE(lib, soname, api, cusolverDnDsyevd);
    return api;
}

/// The folder a library already in this process was loaded from (found by its soname), or "".
std::string loaded_library_folder(const std::string& soname) {
    void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!lib) return "";
    char dir[4096] = {};
    const bool found = dlinfo(lib, RTLD_DI_ORIGIN, dir) == 0;
    dlclose(lib);  // drops only the reference NOLOAD took
    return found ? dir : "";
}

void* open_in(const std::string& dir, const std::string& soname) {
    return dir.empty() ? nullptr : dlopen((dir + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
}

}  // namespace

void* open_cuda_library(const std::string& soname, const std::string& needed_for) {
    void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    const char* error = lib ? nullptr : dlerror();
    const std::string why = error ? error : "not found";
    // Beside a cuBLAS opened already (cuSOLVER usually sits with it), then beside the linked
    // libcudart (the toolkit's lib64).
    for (const std::string& beside :
         {cublas_soname(), "libcudart.so." + std::to_string(CUDART_VERSION / 1000)})
        if (!lib) lib = open_in(loaded_library_folder(beside), soname);
    if (!lib)
        throw ResourceError(needed_for + ", but " + soname + " could not be loaded (" + why +
                            "); put the CUDA toolkit's library folder on LD_LIBRARY_PATH");
    return lib;
}

const CublasApi& cublas_api() {
    static const CublasApi api = load_cublas();
    return api;
}

const CusolverApi& cusolver_api() {
    static const CusolverApi api = load_cusolver();
    return api;
}

bool cublas_loaded() { return !loaded_library_folder(cublas_soname()).empty(); }

}  // namespace embgeom
