// scripts/safetensors-to-h5: a model checkpoint in, a table embgeom reads out with the
// checkpoint's own bits (tests/python/check_safetensors_import.py writes the checkpoints byte by
// byte: bfloat16, float16, float32, float64, sharded, two tokenizer kinds, and bad input).
#include <gtest/gtest.h>

#include "support/test_support.hpp"

namespace embgeom {
namespace {

TEST(SafetensorsImport, CheckpointsBecomeTablesWithTheirBitsAndTokens) {
    test::TempDir dir;
    const test::CommandResult r = test::run_python_file(
        "check_safetensors_import.py",
        test::shell_quote(test::embgeom_binary()) + " " +
            test::shell_quote(test::source_dir() + "/scripts/safetensors-to-h5") + " " +
            test::shell_quote(dir.path()) + " " + std::to_string(test::fresh_seed() % 1000000));
    EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace embgeom
