#pragma once
// Test helpers for running the `infer` binary (KINFER_INFER_BIN) and for scratch directories.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kinfer_test {

struct CliResult {
    int status = -1;  // exit status; -1 if killed by a signal
    std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class ScratchDir {
  public:
    explicit ScratchDir(const std::string& tag) {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("kinfer_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// Runs `infer ARGS` (ARGS is pasted into a shell command line: quote paths) and captures both streams.
// `env` is prefixed to the command ("OMP_NUM_THREADS=1").
inline CliResult run_infer_cli(const std::string& args, const std::string& env = "") {
    ScratchDir io("cli");
    const auto out = io / "stdout.txt", err = io / "stderr.txt";
    const std::string cmd = env + (env.empty() ? "" : " ") + "'" + KINFER_INFER_BIN + "' " + args + " >'" +
                            out.string() + "' 2>'" + err.string() + "'";
    const int raw = std::system(cmd.c_str());
    CliResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

inline std::string shell_quote(const std::filesystem::path& p) {
    return "'" + p.string() + "'";
}

}  // namespace kinfer_test
