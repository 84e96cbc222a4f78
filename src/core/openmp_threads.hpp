#pragma once
// The calling thread's OpenMP thread count, set for a scope. It sizes every parallel region the
// thread starts without a num_threads clause, and every OpenBLAS call it makes: embgeom links
// OpenBLAS's OpenMP build (CMakeLists.txt), which sizes each call by the calling thread's OpenMP
// count (omp_get_max_threads), not by openblas_set_num_threads. Without it a thread that never
// set its count (the main thread, a reader thread, a one-thread team) would use every core
// whatever --threads says.
namespace embgeom {

/// While alive, this thread's OpenMP count is `threads` (at least 1); the previous count comes
/// back when it goes. Calls whose bits must not depend on the thread count pass 1: a threaded
/// BLAS call splits its sums by the thread count (LAPACK dsyevd, dsyrk and dgemm do). Inside a
/// team of several threads OpenBLAS runs on one thread anyway. Safe inside a parallel region: it
/// sets only this thread's setting.
class OpenMpThreads {
  public:
    explicit OpenMpThreads(int threads);
    ~OpenMpThreads();
    OpenMpThreads(const OpenMpThreads&) = delete;
    OpenMpThreads& operator=(const OpenMpThreads&) = delete;

  private:
    int previous_;
};

}  // namespace embgeom
