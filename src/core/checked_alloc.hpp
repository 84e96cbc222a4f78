#pragma once
// Large host vectors whose allocation failure becomes the project's one-line ResourceError (exit
// 4, "out of memory allocating <what> (<n> MiB)") instead of an uncaught std::bad_alloc.
#include <cstddef>
#include <new>
#include <string>
#include <vector>

#include "embgeom/errors.hpp"

namespace embgeom {

template <class T>
std::vector<T> checked_vector(std::size_t n, const char* what) {
    try {
        return std::vector<T>(n);
    } catch (const std::bad_alloc&) {
        throw ResourceError(std::string("out of memory allocating ") + what + " (" +
                            std::to_string(n * sizeof(T) >> 20) + " MiB)");
    }
}

}  // namespace embgeom
