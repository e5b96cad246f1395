#include "tools/infer/interrupt.hpp"

#include <csignal>

namespace kinfer::cli {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the flag is set from a signal handler");

extern "C" void on_sigint(int) {
    if (g_interrupted.exchange(true)) {
        std::signal(SIGINT, SIG_DFL);  // second Ctrl-C: give up waiting
        std::raise(SIGINT);
    }
}

}  // namespace

std::atomic<bool>& install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns, so a prompt can react to Ctrl-C
    sigaction(SIGINT, &sa, nullptr);
    return g_interrupted;
}

void clear_interrupt() {
    g_interrupted.store(false);
}

}  // namespace kinfer::cli
