#include "geometry/extremeness.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>

#include "core/openmp_threads.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

using namespace simplex_detail;

namespace {

constexpr std::int64_t kMaxDirectionTile = 2048;

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/// Standard normal number `counter` of the stream `key` (Box-Muller, cosine branch).
double normal_at(std::uint64_t key, std::uint64_t counter) {
    const std::uint64_t h1 = splitmix64(key ^ splitmix64(2 * counter));
    const std::uint64_t h2 = splitmix64(key ^ splitmix64(2 * counter + 1));
    const double u1 = (static_cast<double>(h1 >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(h2 >> 11) * 0x1.0p-53;          // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// Best projection so far for one direction, under the total order (value, then lower index).
struct Extreme {
    float value = 0.0f;
    std::int64_t index = -1;
};

inline void offer_max(Extreme& e, float v, std::int64_t i) {
    if (e.index < 0 || v > e.value || (v == e.value && i < e.index)) e = {v, i};
}
inline void offer_min(Extreme& e, float v, std::int64_t i) {
    if (e.index < 0 || v < e.value || (v == e.value && i < e.index)) e = {v, i};
}

/// 64-bit hash of a row's bits (xxHash64-style rounds over 64-bit words); equal rows have equal
/// hashes, and a hash match is only ever a hint that is checked against the rows themselves.
std::uint64_t row_hash(const float* x, std::int64_t d) {
    constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full;
    std::uint64_t h = 0x27D4EB2F165667C5ull ^ static_cast<std::uint64_t>(d);
    std::int64_t j = 0;
    for (; j + 2 <= d; j += 2) {
        std::uint64_t w;
        std::memcpy(&w, x + j, sizeof w);
        h += w * kP2;
        h = ((h << 31) | (h >> 33)) * kP1;
    }
    if (j < d) {
        std::uint32_t w;
        std::memcpy(&w, x + j, sizeof w);
        h = ((h ^ (w * kP1)) << 23 | (h ^ (w * kP1)) >> 41) * kP2;
    }
    return splitmix64(h);
}

struct ThreadState {
    std::vector<float> centred;               // [tile, d] when a centre is given
    std::vector<float> scores;                // [tile, direction tile]
    // [M] best so far. A thread sees its rows in increasing order (static schedule within a
    // chunk, chunks in order), so "strictly better" keeps the lower index on ties; the full rule
    // is applied when threads merge. Separate arrays and unconditional stores let the compiler
    // vectorise the scan.
    std::vector<float> max_value, min_value;
    std::vector<std::int64_t> max_index, min_index;
};

/// Writes directions [m, d] into out (ld = d); see random_unit_directions.
void fill_unit_directions(float* out, std::int64_t m, std::int64_t d, std::uint64_t seed,
                          int threads) {
    const std::uint64_t key = splitmix64(seed);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t i = 0; i < m; ++i) {
        std::vector<double> g(static_cast<std::size_t>(d));
        double n2 = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
            g[j] = normal_at(key, static_cast<std::uint64_t>(i * d + j));
            n2 += g[j] * g[j];
        }
        const double inv = n2 > 0.0 ? 1.0 / std::sqrt(n2) : 0.0;
        for (std::int64_t j = 0; j < d; ++j) out[i * d + j] = static_cast<float>(g[j] * inv);
    }
}

}  // namespace

std::vector<float> random_unit_directions(std::int64_t m, std::int64_t d, std::uint64_t seed,
                                          int threads) {
    EMBGEOM_EXPECTS(m >= 0 && d >= 1, "m >= 0 and d >= 1");
    std::vector<float> out(static_cast<std::size_t>(m * d));
    fill_unit_directions(out.data(), m, d, seed, resolve_threads(threads));
    return out;
}

void settle_extremes(RowSource& source, const std::vector<std::uint8_t>& valid,
                     const std::vector<std::uint64_t>& hashes, Extremeness& out) {
    std::vector<std::int64_t>& argmax = out.argmax;
    std::vector<std::int64_t>& argmin = out.argmin;
    const std::int64_t V = source.rows(), d = source.cols();
    std::unordered_map<std::int64_t, std::int64_t> lowest;  // winner -> lowest copy (-1: unknown)
    std::unordered_map<std::uint64_t, std::vector<std::int64_t>> by_hash;
    for (const auto* list : {&argmax, &argmin})
        for (std::int64_t w : *list)
            if (w >= 0 && lowest.emplace(w, -1).second) by_hash[hashes[w]].push_back(w);
    std::size_t unresolved = lowest.size();
    std::unordered_map<std::int64_t, std::vector<float>> winner_rows;
    std::vector<float> row(static_cast<std::size_t>(d));
    // Rows in increasing order: a winner w resolves to itself at i == w unless a lower copy was
    // confirmed first.
    for (std::int64_t i = 0; i < V && unresolved > 0; ++i) {
        if (!row_is_valid(valid, i)) continue;
        const auto bucket = by_hash.find(hashes[i]);
        if (bucket == by_hash.end()) continue;
        bool have_row = false;
        for (std::int64_t w : bucket->second) {
            std::int64_t& low = lowest[w];
            if (low >= 0) continue;
            if (i == w) {
                low = w;
                --unresolved;
                continue;
            }
            auto [it, fresh] = winner_rows.try_emplace(w);
            if (fresh) {
                it->second.resize(static_cast<std::size_t>(d));
                source.read_rows(w, 1, it->second.data());
            }
            if (!have_row) source.read_rows(i, 1, row.data());
            have_row = true;
            if (std::memcmp(row.data(), it->second.data(), sizeof(float) * d) == 0) {
                low = i;
                --unresolved;
            }
        }
    }
    for (auto* list : {&argmax, &argmin})
        for (std::int64_t& w : *list)
            if (w >= 0) {
                w = lowest[w];
                ++out.counts[static_cast<std::size_t>(w)];
            }
}

void check_extremeness_inputs(const RowSource& source, const std::vector<std::uint8_t>& valid,
                              const ExtremenessOptions& opt) {
    check_table(source, valid);
    const std::int64_t M = opt.directions;
    if (M < 1 || M > (std::int64_t{1} << 30) - 1)
        throw UsageError(
            "simplex extremeness: the number of directions must be in 1 .. 2^30-1, got " +
            std::to_string(M));
    if (opt.center)
        EMBGEOM_EXPECTS(static_cast<std::int64_t>(opt.center->size()) == source.cols(),
                        "center has d entries");
    EMBGEOM_EXPECTS(opt.stream.block_rows >= 0 && opt.stream.threads >= 0,
                    "block_rows >= 0 and threads >= 0");
}

Extremeness random_direction_extremeness(RowSource& source, const std::vector<std::uint8_t>& valid,
                                         const ExtremenessOptions& opt) {
    check_extremeness_inputs(source, valid, opt);
    const std::int64_t V = source.rows(), d = source.cols(), M = opt.directions;
    const int threads = resolve_threads(opt.stream.threads);
    const std::int64_t T = kSimplexTileRows;

    // Direction tiles: n_dt tiles of Md directions each, the last zero-padded; depends on M only.
    const std::int64_t n_dt = (M + kMaxDirectionTile - 1) / kMaxDirectionTile;
    const std::int64_t Md = round_up((M + n_dt - 1) / n_dt, 16);
    std::vector<float> dirs(static_cast<std::size_t>(n_dt * Md * d), 0.0f);
    fill_unit_directions(dirs.data(), M, d, opt.seed, threads);

    std::vector<ThreadState> states(static_cast<std::size_t>(threads));
    for (ThreadState& s : states) {
        if (opt.center) s.centred.resize(static_cast<std::size_t>(T * d));
        s.scores.resize(static_cast<std::size_t>(T * Md));
        s.max_value.assign(static_cast<std::size_t>(M), -std::numeric_limits<float>::infinity());
        s.min_value.assign(static_cast<std::size_t>(M), std::numeric_limits<float>::infinity());
        s.max_index.assign(static_cast<std::size_t>(M), -1);
        s.min_index.assign(static_cast<std::size_t>(M), -1);
    }

    std::vector<std::uint64_t> hashes(static_cast<std::size_t>(V), 0);
    const auto score_chunk = [&](std::int64_t first, std::int64_t count, const float* rows) {
        const std::int64_t n_tiles = (count + T - 1) / T;
#pragma omp parallel num_threads(threads)
        {
            // One BLAS thread per call, so the grid shape is not split again inside BLAS.
            OpenMpThreads one(1);
            ThreadState& st = states[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
            for (std::int64_t t = 0; t < n_tiles; ++t) {
                const std::int64_t row0 = t * T, n_rows = std::min(T, count - row0);
                const float* a = rows + row0 * d;
                for (std::int64_t r = 0; r < n_rows; ++r)
                    if (row_is_valid(valid, first + row0 + r))
                        hashes[first + row0 + r] = row_hash(a + r * d, d);
                if (opt.center) {
                    const double* c = opt.center->data();
                    for (std::int64_t r = 0; r < T; ++r) {
                        const bool keep = r < n_rows && row_is_valid(valid, first + row0 + r);
                        for (std::int64_t j = 0; j < d; ++j)
                            st.centred[r * d + j] =
                                keep ? static_cast<float>(static_cast<double>(a[r * d + j]) - c[j])
                                     : 0.0f;
                    }
                    a = st.centred.data();
                }
                for (std::int64_t dt = 0; dt < n_dt; ++dt) {
                    float* C = st.scores.data();
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T),
                                static_cast<int>(Md), static_cast<int>(d), 1.0f, a,
                                static_cast<int>(d), dirs.data() + dt * Md * d, static_cast<int>(d),
                                0.0f, C, static_cast<int>(Md));
                    const std::int64_t m0 = dt * Md, m_count = std::min(Md, M - m0);
                    for (std::int64_t r = 0; r < n_rows; ++r) {
                        const std::int64_t i = first + row0 + r;
                        if (!row_is_valid(valid, i)) continue;
                        const float* s = C + r * Md;
                        float* hi = st.max_value.data() + m0;
                        float* lo = st.min_value.data() + m0;
                        std::int64_t* hi_i = st.max_index.data() + m0;
                        std::int64_t* lo_i = st.min_index.data() + m0;
                        for (std::int64_t m = 0; m < m_count; ++m) {
                            const bool up = s[m] > hi[m], down = s[m] < lo[m];
                            hi[m] = up ? s[m] : hi[m];
                            hi_i[m] = up ? i : hi_i[m];
                            lo[m] = down ? s[m] : lo[m];
                            lo_i[m] = down ? i : lo_i[m];
                        }
                    }
                }
            }
        }
    };
    for_each_tile_chunk(source, valid, opt.stream.block_rows, score_chunk);

    Extremeness out;
    out.counts.assign(static_cast<std::size_t>(V), 0);
    out.argmax.assign(static_cast<std::size_t>(M), -1);
    out.argmin.assign(static_cast<std::size_t>(M), -1);
    for (std::int64_t m = 0; m < M; ++m) {
        Extreme hi, lo;
        for (const ThreadState& s : states) {
            if (s.max_index[m] >= 0) offer_max(hi, s.max_value[m], s.max_index[m]);
            if (s.min_index[m] >= 0) offer_min(lo, s.min_value[m], s.min_index[m]);
        }
        out.argmax[m] = hi.index;
        out.argmin[m] = lo.index;
    }
    settle_extremes(source, valid, hashes, out);
    return out;
}

}  // namespace embgeom
