#include "engine/precision_policy.hpp"

#include <algorithm>
#include <cmath>

#include "embgeom/errors.hpp"

namespace embgeom {

const char* to_string(PrecisionPath p) {
    switch (p) {
        case PrecisionPath::kExact:
            return "exact";
        case PrecisionPath::kTf32:
            return "tf32";
        case PrecisionPath::kBf16:
            return "bf16";
        case PrecisionPath::kFp16:
            return "fp16";
        case PrecisionPath::kBf16Raw:
            return "bf16-raw";
        case PrecisionPath::kFp16Raw:
            return "fp16-raw";
    }
    return "?";
}

namespace engine {

bool is_rescored(PrecisionPath p) {
    return p == PrecisionPath::kTf32 || p == PrecisionPath::kBf16 || p == PrecisionPath::kFp16;
}

bool is_raw16(PrecisionPath p) {
    return p == PrecisionPath::kBf16Raw || p == PrecisionPath::kFp16Raw;
}

bool uses_copy16(PrecisionPath p) {
    return is_raw16(p) || p == PrecisionPath::kBf16 || p == PrecisionPath::kFp16;
}

bool may_use_copy16(Precision request) {
    return request == Precision::kAuto || request == Precision::kBf16 ||
           request == Precision::kFp16;
}

bool may_rescore(Precision request) { return request != Precision::kExact; }

std::int64_t candidate_count(std::int64_t k, std::int64_t n_valid) {
    if (k < 1 || n_valid < 2) return 0;
    return std::min({4 * k, kMaxCandidates, n_valid - 1});
}

PrecisionPath resolve_precision(Precision request, RawExactness table, PrecisionCapacity cap,
                                std::int64_t k, std::int64_t n_valid) {
    const bool rescore = cap.candidates;
    switch (request) {
        case Precision::kExact:
            return PrecisionPath::kExact;
        case Precision::kAuto: {
            if (cap.copy16 && table.bf16) return PrecisionPath::kBf16Raw;
            if (cap.copy16 && table.fp16) return PrecisionPath::kFp16Raw;
            // With fewer than 2K candidates (K > 512) the near-tie guarantee weakens: auto keeps
            // it by running exact; an explicit request gets the 1024 candidates there are.
            const std::int64_t needed = std::min(2 * k, std::max<std::int64_t>(n_valid - 1, 0));
            if (rescore && candidate_count(k, n_valid) >= needed) return PrecisionPath::kTf32;
            return PrecisionPath::kExact;
        }
        case Precision::kTf32:
            return rescore ? PrecisionPath::kTf32 : PrecisionPath::kExact;
        case Precision::kBf16:
            if (cap.copy16 && table.bf16) return PrecisionPath::kBf16Raw;
            return cap.copy16 && rescore ? PrecisionPath::kBf16 : PrecisionPath::kExact;
        case Precision::kFp16:
            if (cap.copy16 && table.fp16) return PrecisionPath::kFp16Raw;
            return cap.copy16 && rescore ? PrecisionPath::kFp16 : PrecisionPath::kExact;
    }
    return PrecisionPath::kExact;
}

double fast_error_bound(PrecisionPath p, std::int64_t d) {
    const auto input_rounding = [](double e) { return 2.0 * e + e * e; };
    switch (p) {
        case PrecisionPath::kTf32:
            return input_rounding(0x1p-10);
        case PrecisionPath::kBf16:
            return input_rounding(0x1p-8);
        case PrecisionPath::kFp16:
            // Normalised values below 2^-14 become float16 subnormals, off by up to 2^-25 each in
            // absolute terms: sum_c |y_c| 2^-25 <= sqrt(d) 2^-25 per side (Cauchy-Schwarz).
            return input_rounding(0x1p-11) +
                   2.0 * std::sqrt(static_cast<double>(std::max<std::int64_t>(d, 0))) * 0x1p-25;
        default:
            return 0.0;
    }
}

double duplicate_margin(PrecisionPath p, std::int64_t d) { return 4.0 * fast_error_bound(p, d); }

Raw16Format Raw16Tracker::format_of(RawExactness e) const {
    if (allow_bf16_ && e.bf16) return Raw16Format::kBf16;
    if (allow_fp16_ && e.fp16) return Raw16Format::kFp16;
    return Raw16Format::kNone;
}

Raw16Format Raw16Tracker::next_block(std::int64_t first, std::int64_t count, RawExactness so_far) {
    EMBGEOM_EXPECTS(first == next_row_ && count >= 0, "raw 16-bit blocks come in row order");
    // The device flags only ever turn false; taking the AND keeps that even if a caller does not.
    so_far_.bf16 = so_far_.bf16 && so_far.bf16;
    so_far_.fp16 = so_far_.fp16 && so_far.fp16;
    next_row_ = first + count;
    const Raw16Format f = format_of(so_far_);
    if (f == Raw16Format::kBf16) bf16_rows_ = next_row_;
    return f;
}

Raw16Format raw_format(PrecisionPath p) {
    if (p == PrecisionPath::kBf16Raw) return Raw16Format::kBf16;
    if (p == PrecisionPath::kFp16Raw) return Raw16Format::kFp16;
    return Raw16Format::kNone;
}

}  // namespace engine
}  // namespace embgeom
