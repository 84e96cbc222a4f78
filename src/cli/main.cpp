#include "cli/cli.hpp"
#include "cpu/blas_runtime.hpp"

int main(int argc, char** argv) {
    embgeom::ensure_fast_blas_kernels(argv);
    return embgeom::run_cli(argc, argv);
}
