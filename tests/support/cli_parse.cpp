// test::parse, apart from the rest of the test support: it is the one helper that needs the CLI
// library, and the emulated CUDA tests link the support without it (their backend chain is
// their own).
#include <CLI/CLI.hpp>

#include "support/test_support.hpp"

namespace embgeom::test {

CliState parse(const std::vector<std::string>& args) {
    CLI::App app;
    CliState st;
    build_cli(app, st);
    parse_cli(app, st, args);
    return st;
}

}  // namespace embgeom::test
