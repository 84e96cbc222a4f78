// The loader of cuBLAS and cuSOLVER (src/cuda/cuda_libraries.hpp), in CUDA builds only: it needs
// no GPU or driver, so CI checks every entry point the CUDA backend calls resolves in the
// toolkit's libraries before a GPU machine's short time is spent finding out.
#include <gtest/gtest.h>

#include "cuda/cuda_libraries.hpp"
#include "embgeom/errors.hpp"

namespace {

using namespace embgeom;

TEST(CudaLibraries, EveryCublasAndCusolverEntryPointResolves) {
    const CublasApi& blas = cublas_api();  // throws, naming the symbol, if one is missing
    EXPECT_TRUE(cublas_loaded());
    int major = 0;
    ASSERT_EQ(blas.cublasGetProperty(MAJOR_VERSION, &major), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(major, CUBLAS_VER_MAJOR);
    EXPECT_STREQ(blas.cublasGetStatusName(CUBLAS_STATUS_NOT_INITIALIZED),
                 "CUBLAS_STATUS_NOT_INITIALIZED");
    const CusolverApi& solver = cusolver_api();
    EXPECT_NE(solver.cusolverDnDsyevd, nullptr);
}

TEST(CudaLibraries, AMissingLibraryIsAResourceErrorNamingIt) {
    try {
        open_cuda_library("libembgeom-no-such-library.so.1", "the test needs it");
        FAIL() << "no error";
    } catch (const ResourceError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("the test needs it, but libembgeom-no-such-library.so.1 could not be "
                         "loaded"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("LD_LIBRARY_PATH"), std::string::npos) << m;
    }
}

}  // namespace
