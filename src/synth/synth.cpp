#include "synth/synth.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "embgeom/errors.hpp"
#include "io/result_file.hpp"

namespace embgeom {
namespace {

// Dirichlet(alpha) weights over K vertices via normalised Gamma draws.
void dirichlet(std::mt19937_64& rng, double alpha, std::vector<double>& w) {
    std::gamma_distribution<double> g(alpha, 1.0);
    double s = 0.0;
    for (double& x : w) s += (x = g(rng));
    if (s <= 0.0) {  // every draw underflowed (tiny alpha): put the token on one vertex
        std::fill(w.begin(), w.end(), 0.0);
        w[std::uniform_int_distribution<std::size_t>(0, w.size() - 1)(rng)] = 1.0;
        return;
    }
    for (double& x : w) x /= s;
}

void fill_gaussian(std::mt19937_64& rng, SynthTable& t) {
    std::normal_distribution<float> n(0.0f, 1.0f);
    for (float& x : t.data) x = n(rng);
}

// A trained-like cloud: x = b + sum_k w_k v_k + noise, with sparse Dirichlet weights so most
// tokens sit near a face of the simplex spanned by the vertices v_k, and the most specific ones
// near its corners. Under-trained tokens keep a small random vector around the centre of the
// cloud, where a loss that never sees them leaves them (the "SolidGoldMagikarp" glitch tokens).
void fill_trained(std::mt19937_64& rng, const SynthSpec& spec, SynthTable& t) {
    const std::int64_t V = t.rows, d = t.dims;
    const std::int64_t K = std::clamp<std::int64_t>(d / 4, 3, 64);
    t.simplex_vertices = K;
    std::normal_distribution<double> n01(0.0, 1.0);
    std::vector<double> vertices(static_cast<std::size_t>(K * d));
    for (double& x : vertices) x = n01(rng);
    // Bias of norm ~3x the vertex spread, as in trained tables whose mean dominates raw cosines.
    for (std::int64_t c = 0; c < d; ++c) t.bias[c] = 3.0 * n01(rng);
    std::vector<double> w(static_cast<std::size_t>(K));
    const double noise = 0.3;
    for (std::int64_t r = 0; r < V; ++r) {
        dirichlet(rng, 0.2, w);
        float* x = t.data.data() + r * d;
        for (std::int64_t c = 0; c < d; ++c) {
            double v = t.bias[c] + noise * n01(rng);
            for (std::int64_t k = 0; k < K; ++k) v += w[k] * vertices[k * d + c] * 4.0;
            x[c] = static_cast<float>(v);
        }
    }
    // Plant under-trained tokens at the mean of the cloud, spread far less than real tokens.
    std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
    for (std::int64_t r = 0; r < V; ++r)
        for (std::int64_t c = 0; c < d; ++c) mean[c] += t.data[r * d + c];
    for (double& m : mean) m /= static_cast<double>(V);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(V));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    const std::int64_t U = spec.undertrained >= 0 ? spec.undertrained : std::max<std::int64_t>(8, V / 500);
    const std::int64_t P = spec.duplicate_pairs >= 0 ? spec.duplicate_pairs : std::max<std::int64_t>(4, V / 2000);
    if (U + 2 * P > V) throw UsageError("synth: --rows too small for the planted tokens");
    t.undertrained.assign(ids.begin(), ids.begin() + U);
    std::sort(t.undertrained.begin(), t.undertrained.end());
    for (std::int64_t id : t.undertrained) {
        for (std::int64_t c = 0; c < d; ++c)
            t.data[id * d + c] = static_cast<float>(mean[c] + 0.02 * n01(rng));
        t.vocab[id] = "<|unused_" + std::to_string(id) + "|>";
    }
    // Near-duplicate pairs: a copy of a real token with a perturbation far below float noise of
    // the cloud, so their cosine is above 0.9999.
    for (std::int64_t p = 0; p < P; ++p) {
        const std::int64_t a = ids[U + 2 * p], b = ids[U + 2 * p + 1];
        for (std::int64_t c = 0; c < d; ++c)
            t.data[b * d + c] = static_cast<float>(t.data[a * d + c] + 1e-3 * n01(rng));
        t.duplicate_pairs.push_back(std::min(a, b));
        t.duplicate_pairs.push_back(std::max(a, b));
        t.vocab[b] = t.vocab[a] + "_dup";
    }
}

StoredFloat stored_float(SynthDtype t) {
    switch (t) {
        case SynthDtype::kFloat16: return StoredFloat::kFloat16;
        case SynthDtype::kBFloat16: return StoredFloat::kBFloat16;
        case SynthDtype::kFloat32: break;
    }
    return StoredFloat::kFloat32;
}

}  // namespace

const char* to_string(SynthKind k) { return k == SynthKind::kGaussian ? "gaussian" : "trained"; }

const char* to_string(SynthDtype t) {
    switch (t) {
        case SynthDtype::kFloat16: return "float16";
        case SynthDtype::kBFloat16: return "bfloat16";
        case SynthDtype::kFloat32: break;
    }
    return "float32";
}

SynthTable synthesize(const SynthSpec& spec) {
    if (spec.rows < 2) throw UsageError("synth: --rows must be at least 2");
    if (spec.dims < 1) throw UsageError("synth: --dim must be at least 1");
    SynthTable t;
    t.rows = spec.rows;
    t.dims = spec.dims;
    t.data.resize(static_cast<std::size_t>(spec.rows * spec.dims));
    t.bias.assign(static_cast<std::size_t>(spec.dims), 0.0);
    t.vocab.resize(static_cast<std::size_t>(spec.rows));
    for (std::int64_t r = 0; r < spec.rows; ++r) t.vocab[r] = "tok_" + std::to_string(r);
    std::mt19937_64 rng(spec.seed);
    if (spec.kind == SynthKind::kGaussian) fill_gaussian(rng, t);
    else fill_trained(rng, spec, t);
    return t;
}

void write_synth_file(const SynthTable& t, const SynthSpec& spec, const std::string& path) {
    EMBGEOM_EXPECTS(
        t.rows >= 0 && t.dims >= 0 && t.data.size() == static_cast<std::size_t>(t.rows * t.dims),
        "synthetic table shape");
    ResultFile out(path);
    {
        // In row blocks of about 4 MiB: a 16-bit copy of a Llama-size table is never held whole.
        const auto table = out.create_table("/embeddings", t.rows, t.dims, stored_float(spec.dtype));
        const std::int64_t block = std::max<std::int64_t>(1, (std::int64_t{1} << 20) / std::max<std::int64_t>(1, t.dims));
        for (std::int64_t r0 = 0; r0 < t.rows && t.dims > 0; r0 += block) {
            const std::int64_t n = std::min(block, t.rows - r0);
            table->write_tile(r0, 0, MatrixView<const float>(t.data.data() + r0 * t.dims, n, t.dims));
        }
    }
    out.write_strings("/vocab", t.vocab);
    out.write("/bias", t.bias);
    out.write("/truth/undertrained", t.undertrained);
    out.write_matrix("/truth/duplicate_pairs", t.duplicate_pairs.data(),
                     static_cast<std::int64_t>(t.duplicate_pairs.size() / 2), 2);
    out.set_attribute("/", "kind", std::string(to_string(spec.kind)));
    out.set_attribute("/", "dtype", std::string(to_string(spec.dtype)));
    out.set_attribute("/", "seed", static_cast<std::int64_t>(spec.seed));
    out.set_attribute("/", "rows", t.rows);
    out.set_attribute("/", "dims", t.dims);
    out.set_attribute("/", "simplex_vertices", t.simplex_vertices);
    out.commit();
}

}  // namespace embgeom
