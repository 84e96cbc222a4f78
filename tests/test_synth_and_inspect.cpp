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
