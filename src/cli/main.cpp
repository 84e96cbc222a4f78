#include "cli/cli.hpp"
#include "cpu/blas_runtime.hpp"
#include "scaleout/job_ranks.hpp"

int main(int argc, char** argv) {
    embgeom::ensure_fast_blas_kernels(argv);  // may re-execute this process: before MPI starts
    const embgeom::scaleout::MpiSession mpi(argc, argv);
    return embgeom::run_cli(argc, argv);
}
