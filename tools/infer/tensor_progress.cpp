#include "tools/infer/tensor_progress.hpp"

#include "gguf/gguf_file.hpp"

#include <unistd.h>

#include <cstdio>

namespace kinfer::cli {

std::string file_type_help() {
    std::string types;
    for (const auto& f : file_types()) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-7s %s\n", f.name, f.summary);
        types += line;
    }
    return types;
}

TensorProgressPrinter::TensorProgressPrinter(bool show_from, bool quiet)
    : show_from_(show_from), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

void TensorProgressPrinter::clear_bar() {
    if (!bar_shown_) return;
    std::fputs("\r\033[K", stderr);
    bar_shown_ = false;
}

void TensorProgressPrinter::operator()(const TensorProgress& ev) {
    if (quiet_) return;
    const int width = static_cast<int>(std::to_string(ev.count).size());
    if (!ev.finished) {
        if (!tty_) return;
        const double total =
            ev.out_bytes_total ? double(ev.out_bytes_done) / double(ev.out_bytes_total) : 1.0;
        constexpr int kBar = 30;
        const int filled = static_cast<int>(total * kBar);
        std::string bar(kBar, ' ');
        for (int i = 0; i < filled && i < kBar; ++i) bar[i] = '=';
        if (filled < kBar) bar[filled] = '>';
        std::fprintf(stderr, "\r\033[K[%s] %3d%%  %s %3d%%", bar.c_str(), static_cast<int>(total * 100),
                     std::string(ev.name).c_str(), static_cast<int>(ev.fraction_done * 100));
        std::fflush(stderr);
        bar_shown_ = true;
        return;
    }
    clear_bar();
    if (ev.wanted) {
        const TypeTraits& w = type_traits(*ev.wanted);
        std::fprintf(stderr,
                     "%s: row length %llu is not a multiple of the %s block size %u; falling back to %s\n",
                     std::string(ev.name).c_str(), static_cast<unsigned long long>(ev.ne[0]), w.name,
                     w.block_elems, type_name(ev.to));
    }
    const std::string shape = format_shape(ev.ne, ev.n_dims);
    if (show_from_) {
        const bool copy = ev.from == ev.to;
        std::fprintf(stderr, "[%*zu/%zu] %-32s %5s -> %-5s %-14s %10s -> %s%s\n", width, ev.index + 1,
                     ev.count, std::string(ev.name).c_str(), type_name(ev.from), type_name(ev.to),
                     shape.c_str(), format_bytes(ev.in_bytes).c_str(), format_bytes(ev.out_bytes).c_str(),
                     copy ? " (copied)" : "");
    } else {
        std::fprintf(stderr, "[%*zu/%zu] %-32s %-5s %-14s %10s\n", width, ev.index + 1, ev.count,
                     std::string(ev.name).c_str(), type_name(ev.to), shape.c_str(),
                     format_bytes(ev.out_bytes).c_str());
    }
    if (tty_ && ev.index + 1 < ev.count) {
        // keep the bar visible between tensors
        TensorProgress partial = ev;
        partial.finished = false;
        partial.fraction_done = 1;
        (*this)(partial);
    }
}

std::string format_bytes(uint64_t bytes) {
    char buf[32];
    const double b = static_cast<double>(bytes);
    if (bytes < (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024);
    else if (bytes < (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1 << 20));
    else
        std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1 << 30));
    return buf;
}

std::string format_shape(const std::array<uint64_t, 4>& ne, uint32_t n_dims) {
    return gguf::shape_string(std::span<const uint64_t>(ne.data(), std::max<uint32_t>(n_dims, 1)));
}

}  // namespace kinfer::cli
