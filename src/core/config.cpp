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

const char* to_string(Precision p) {
    switch (p) {
        case Precision::kAuto: return "auto";
        case Precision::kExact: return "exact";
        case Precision::kTf32: return "tf32";
        case Precision::kBf16: return "bf16";
        case Precision::kFp16: return "fp16";
    }
    return "?";
}

}  // namespace embgeom
