#include "embgeom/config.hpp"

namespace embgeom {

const char* to_string(BackendKind k) {
    switch (k) {
        case BackendKind::kAuto: return "auto";
        case BackendKind::kCpu: return "cpu";
        case BackendKind::kCuda: return "cuda";
    }
    return "?";
}

const char* to_string(MatrixDtype k) {
    return k == MatrixDtype::kFloat16 ? "float16" : "float32";
}

}  // namespace embgeom
