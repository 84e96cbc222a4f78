#include "core/openmp_threads.hpp"

#include <omp.h>

#include <algorithm>

namespace embgeom {

OpenMpThreads::OpenMpThreads(int threads) : previous_(omp_get_max_threads()) {
    omp_set_num_threads(std::max(threads, 1));
}

OpenMpThreads::~OpenMpThreads() { omp_set_num_threads(previous_); }

}  // namespace embgeom
