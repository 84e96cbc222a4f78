#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace embgeom::test {

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/embgeom-test-XXXXXX";
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') q += "'\\''";
        else q += c;
    }
    return q + "'";
}

CommandResult run_command(const std::string& command_line) {
    TempDir tmp;
    const std::string out = tmp.file("stdout"), err = tmp.file("stderr");
    const std::string full =
        "( " + command_line + " ) >" + shell_quote(out) + " 2>" + shell_quote(err) + " </dev/null";
    const int status = std::system(full.c_str());
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text_file(out);
    r.err = read_text_file(err);
    return r;
}

namespace {

/// A path fixed at build time, unless the environment names another: the GPU kit (scripts/gpu-kit)
/// runs these binaries on a machine where the build and source folders sit elsewhere.
std::string configured(const char* variable, const char* built_in) {
    const char* v = std::getenv(variable);
    return v && *v ? v : built_in;
}

}  // namespace

std::string python_binary() { return configured("EMBGEOM_PYTHON", EMBGEOM_PYTHON); }

std::string embgeom_binary() { return configured("EMBGEOM_BINARY", EMBGEOM_BINARY); }
std::string source_dir() { return configured("EMBGEOM_SOURCE_DIR", EMBGEOM_SOURCE_DIR); }

CommandResult run_embgeom(const std::string& args) {
    return run_command(shell_quote(embgeom_binary()) + " " + args);
}

CommandResult run_python(const std::string& script, const std::string& args) {
    TempDir tmp;
    const std::string path = tmp.file("script.py");
    write_text_file(path, script);
    CommandResult r = run_command(shell_quote(python_binary()) + " " + shell_quote(path) + " " + args);
    if (r.exit_code != 0)
        ADD_FAILURE() << "python failed (" << r.exit_code << "):\n" << r.out << "\n" << r.err;
    return r;
}

CommandResult run_python_file(const std::string& name, const std::string& args) {
    const std::string path = source_dir() + "/tests/python/" + name;
    CommandResult r = run_command(shell_quote(python_binary()) + " " + shell_quote(path) + " " + args);
    if (r.exit_code != 0)
        ADD_FAILURE() << name << " failed (" << r.exit_code << "):\n" << r.out << "\n" << r.err;
    return r;
}

std::uint64_t fresh_seed() {
    std::uint64_t seed;
    if (const char* s = std::getenv("EMBGEOM_TEST_SEED")) {
        seed = std::strtoull(s, nullptr, 10);
    } else {
        std::random_device rd;
        seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    std::cerr << "[ seed     ] EMBGEOM_TEST_SEED=" << seed << "\n";
    return seed;
}

std::vector<float> random_table(std::int64_t rows, std::int64_t cols, std::uint64_t seed,
                                float mean) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> dist(mean, 1.0f);
    std::vector<float> v(static_cast<std::size_t>(rows * cols));
    for (auto& x : v) x = dist(rng);
    return v;
}

std::vector<double> read_doubles(const std::string& path) {
    const std::string bytes = read_text_file(path);
    std::vector<double> v(bytes.size() / sizeof(double));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(double));
    return v;
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

}  // namespace embgeom::test
