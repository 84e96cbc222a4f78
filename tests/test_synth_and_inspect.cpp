// `embgeom synth` and `embgeom inspect` through the binary, checked with h5py.
#include <gtest/gtest.h>

#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::run_embgeom;
using test::run_python;
using test::shell_quote;
using test::TempDir;

TEST(Synth, GaussianIsTheIsotropicNullAndSeedsReproduce) {
    TempDir dir;
    const std::string a = dir.file("a.h5"), b = dir.file("b.h5"), c = dir.file("c.h5");
    ASSERT_EQ(run_embgeom("synth --kind gaussian --rows 4000 --dim 16 --seed 5 --output " + shell_quote(a)).exit_code, 0);
    ASSERT_EQ(run_embgeom("synth --kind gaussian --rows 4000 --dim 16 --seed 5 --output " + shell_quote(b)).exit_code, 0);
    ASSERT_EQ(run_embgeom("synth --kind gaussian --rows 4000 --dim 16 --seed 6 --output " + shell_quote(c)).exit_code, 0);
    run_python(R"py(
import sys, h5py, numpy as np
a, b, c = (h5py.File(p)["embeddings"][...] for p in sys.argv[1:4])
assert a.shape == (4000, 16) and a.dtype == np.float32
assert np.array_equal(a, b) and not np.array_equal(a, c)
se = 5 / np.sqrt(a.shape[0])
assert np.all(np.abs(a.mean(0)) < se), a.mean(0)
assert np.all(np.abs(a.var(0) - 1) < 5 * np.sqrt(2 / a.shape[0])), a.var(0)
f = h5py.File(sys.argv[1])
assert f.attrs["kind"] == "gaussian" and f.attrs["seed"] == 5
assert len(f["truth/undertrained"]) == 0 and not f["bias"][...].any()
)py", shell_quote(a) + " " + shell_quote(b) + " " + shell_quote(c));
}

TEST(Synth, TrainedTableStoresItsTruth) {
    TempDir dir;
    const std::string t = dir.file("t.h5");
    const auto r = run_embgeom("synth --rows 3000 --dim 32 --seed 2 --undertrained 12 --duplicate-pairs 5 --output " + shell_quote(t));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run_python(R"py(
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
X = f["embeddings"][...].astype(np.float64)
u = f["truth/undertrained"][...]
p = f["truth/duplicate_pairs"][...]
assert len(u) == 12 and p.shape == (5, 2)
vocab = f["vocab"].asstr()[...]
assert all(vocab[i].startswith("<|unused_") for i in u)
d = np.linalg.norm(X - X.mean(0), axis=1)
assert set(np.argsort(d)[:12]) == set(u), "planted tokens sit closest to the centroid"
Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
assert all(Xn[a] @ Xn[b] > 0.9999 for a, b in p), "planted pairs are near-duplicates"
assert np.linalg.norm(X.mean(0)) > 0.5 * np.linalg.norm(X, axis=1).mean(), "a large common offset"
)py", shell_quote(t));
    EXPECT_EQ(run_embgeom("synth --rows 1 --dim 4 --output " + shell_quote(dir.file("x.h5"))).exit_code, 2);
    EXPECT_EQ(run_embgeom("synth --rows 20 --dim 4 --undertrained 30 --output " + shell_quote(dir.file("x.h5"))).exit_code, 2);
    EXPECT_FALSE(test::file_exists(dir.file("x.h5")));
}

// The line of `embgeom inspect` output that lists dataset path.
std::string inspect_line(const std::string& out, const std::string& path) {
    const std::size_t at = out.find("  " + path + " ");
    if (at == std::string::npos) return "";
    return out.substr(at, out.find('\n', at) - at);
}

TEST(Synth, SixteenBitDtypesRoundToNearestEvenAndReadBack) {
    TempDir dir;
    const std::string base = "synth --rows 900 --dim 24 --seed 9 --output ";
    std::string paths;
    for (const char* dtype : {"float32", "float16", "bfloat16"}) {
        const std::string table = dir.file(std::string(dtype) + ".h5");
        const auto r = run_embgeom(base + shell_quote(table) + " --dtype " + dtype);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find(std::string("] ") + dtype + " ("), std::string::npos) << r.out;
        // embgeom's own reader: inspect names the type and offers it as a table.
        const auto listed = run_embgeom("inspect " + shell_quote(table));
        ASSERT_EQ(listed.exit_code, 0) << listed.err;
        const std::string line = inspect_line(listed.out, "/embeddings");
        EXPECT_NE(line.find(std::string(" ") + dtype + " "), std::string::npos) << listed.out;
        EXPECT_NE(line.find("--dataset"), std::string::npos) << listed.out;
        const std::string result = dir.file(std::string("geometry_") + dtype + ".h5");
        const auto analyzed =
            run_embgeom("analyze --topk 5 --dataset /embeddings --vocab /vocab --input " +
                        shell_quote(table) + " --output " + shell_quote(result));
        ASSERT_EQ(analyzed.exit_code, 0) << analyzed.err;
        EXPECT_NE(analyzed.out.find(std::string(", ") + dtype + ")"), std::string::npos)
            << analyzed.out;
        paths += " " + shell_quote(table) + " " + shell_quote(result);
    }
    // h5py: float16 is numpy's own float16 (which rounds to nearest even); bfloat16 has the
    // documented bit fields, and its raw patterns are the nearest-even rounding of the float32
    // table of the same seed, computed here by comparing distances to both neighbours.
    run_python(R"py(
import sys, h5py, numpy as np
f32, g32, f16, g16, b16, gb16 = sys.argv[1:7]
with h5py.File(f32) as f:
    x = f["embeddings"][...]
    rest = {k: f[k][...] for k in ("vocab", "bias", "truth/undertrained", "truth/duplicate_pairs")}
    attrs = dict(f.attrs)
assert x.dtype == np.float32 and attrs["dtype"] == "float32"

def same_rest(f, dtype):
    for k, v in rest.items():
        assert k != "bias" or f[k].dtype == np.float64
        assert np.array_equal(f[k][...], v), k
    a = dict(f.attrs)
    assert a.pop("dtype") == dtype and a == {k: v for k, v in attrs.items() if k != "dtype"}, a

def check_norms(result, widened, dtype):
    with h5py.File(result) as g:
        assert g.attrs["input_dtype"] == dtype
        want = np.linalg.norm(widened.astype(np.float64), axis=1)
        assert np.allclose(g["norms"][...], want, rtol=1e-5), dtype

check_norms(g32, x, "float32")

with h5py.File(f16) as f:
    h = f["embeddings"]
    assert h.dtype == np.float16 and h.shape == x.shape
    assert np.array_equal(h[...].view("<u2"), x.astype("<f2").view("<u2"))
    same_rest(f, "float16")
    check_norms(g16, h[...].astype(np.float32), "float16")

with h5py.File(b16) as f:
    ds = f["embeddings"]
    t = ds.id.get_type()
    assert t.get_class() == h5py.h5t.FLOAT and t.get_size() == 2 and t.get_order() == h5py.h5t.ORDER_LE
    assert t.get_fields() == (15, 7, 8, 0, 7) and t.get_ebias() == 127, (t.get_fields(), t.get_ebias())
    raw = np.empty(ds.shape, "<u2")
    ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=t)
    widened = ds[...]                      # h5py widens the unknown 16-bit float to float32
    same_rest(f, "bfloat16")
u = x.view("<u4").astype(np.uint32)
lo = u >> 16                               # truncated (toward zero), sign kept
hi = lo + 1                                # next bfloat16 away from zero
value = lambda b: (b.astype("<u4") << 16).view("<f4").astype(np.float64)
below, above = np.abs(x - value(lo)), np.abs(value(hi) - x)
want = np.where((above < below) | ((above == below) & (lo % 2 == 1)), hi, lo).astype("<u2")
assert np.array_equal(raw, want), np.argwhere(raw != want)[:5]
assert (raw != lo).any() and (raw == lo).any()
assert widened.dtype == np.float32 and np.array_equal(widened, value(raw))
check_norms(gb16, value(raw), "bfloat16")
)py", paths);
    EXPECT_EQ(run_embgeom(base + shell_quote(dir.file("x.h5")) + " --dtype int8").exit_code, 2);
    EXPECT_FALSE(test::file_exists(dir.file("x.h5")));
}

TEST(Inspect, ListsDatasetsWithWhatToPassAndRejectsBadFiles) {
    TempDir dir;
    const std::string t = dir.file("t.h5");
    run_python(R"py(
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("model/emb", data=np.zeros((10, 4), "f2"), chunks=(5, 4), compression="gzip", shuffle=True)
    f["model/tokens"] = np.array(["a", "b"], dtype=h5py.string_dtype())
    f["bias"] = np.zeros(4)
    f["ids"] = np.arange(3)
)py", shell_quote(t));
    const auto r = run_embgeom("inspect " + shell_quote(t));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("4 datasets"), std::string::npos) << r.out;
    for (const char* part : {"/model/emb", "[10, 4]", "float16", "chunked [5x4]", "gzip", "shuffle",
                             "--dataset", "/model/tokens", "--vocab", "/bias", "--bias-dataset", "/ids", "int64"})
        EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
    test::write_text_file(dir.file("not.h5"), "plain text");
    const auto bad = run_embgeom("inspect " + shell_quote(dir.file("not.h5")));
    EXPECT_EQ(bad.exit_code, 3);
    EXPECT_NE(bad.err.find("not.h5"), std::string::npos) << bad.err;
    EXPECT_EQ(run_embgeom("inspect " + shell_quote(dir.file("missing.h5"))).exit_code, 3);
}

}  // namespace
}  // namespace embgeom
