// A run stopped by a signal (a scheduler's SIGTERM at the time limit, Ctrl-C, a closed terminal)
// leaves no unfinished file behind and no partial result, keeps an earlier result at the output
// path, says so in one line, and dies by that signal (src/io/unfinished_files.hpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

extern char** environ;

namespace {

using namespace embgeom;
namespace fs = std::filesystem;

std::vector<std::string> hidden_temporaries(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos)
            out.push_back(e.path().string());
    return out;
}

std::string file_text(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Stopped {
    int status = 0;
    std::string err;
    bool temporary_seen = false;
};

// Starts `embgeom analyze` writing out in dir, waits for its temporary file, sends sig.
Stopped analyze_and_stop(const std::string& table, const std::string& dir, const std::string& out,
                         int sig) {
    const std::string binary = test::embgeom_binary(), err_file = dir + "/stderr.txt";
    std::vector<std::string> args{binary, "analyze", "-i",        table, "-d",        "/embeddings",
                                  "-o",   out,       "--backend", "cpu", "--threads", "1"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    Stopped r;
    const int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        ADD_FAILURE() << "posix_spawn failed: " << spawned;
        return r;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!hidden_temporaries(dir).empty()) {
            r.temporary_seen = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // A moment inside the run, so that the signal lands mid-computation.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(pid, sig);
    ::waitpid(pid, &r.status, 0);
    r.err = file_text(err_file);
    return r;
}

TEST(InterruptedOutput, AStoppedRunRemovesItsTemporaryAndKeepsTheEarlierResult) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5");
    // ~10 s of single-threaded all-pairs: long enough for the signal to land inside it.
    ASSERT_EQ(
        test::run_embgeom("synth --rows 40000 --dim 256 --seed 3 -o " + test::shell_quote(table))
            .exit_code,
        0);
    const std::string out_dir = dir.file("out");
    fs::create_directory(out_dir);
    const std::string out = out_dir + "/geometry.h5";
    { std::ofstream(out) << "an earlier result"; }

    for (const int sig : {SIGTERM, SIGINT}) {
        const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
        SCOPED_TRACE(name);
        const Stopped r = analyze_and_stop(table, out_dir, out, sig);
        ASSERT_TRUE(r.temporary_seen) << "the run never created its temporary file";
        ASSERT_TRUE(WIFSIGNALED(r.status)) << "exit status " << r.status << ": " << r.err;
        EXPECT_EQ(WTERMSIG(r.status), sig);
        EXPECT_EQ(r.err, std::string("embgeom: stopped by ") + name + ": " + out +
                             " was not written (its unfinished temporary file is removed)\n");
        EXPECT_TRUE(hidden_temporaries(out_dir).empty());
        EXPECT_EQ(file_text(out), "an earlier result");
    }
}

}  // namespace
