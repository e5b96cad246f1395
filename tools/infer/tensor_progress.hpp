#pragma once
// Progress output shared by the model-writing commands (quantize, synth): one line per finished tensor on
// stderr, a line for each tensor that fell back to a wider type, and on a terminal a live bar while big
// tensors are being written.
#include <array>
#include <cstdint>
#include <string>

#include "filetools/quant_recipe.hpp"
#include "filetools/row_stream.hpp"

namespace kinfer::cli {

// One line per file type ("  Q4_K_M  ..."), for the --help of the commands that write them.
std::string file_type_help();

class TensorProgressPrinter {
  public:
    // show_from: print "f16 -> q4_K" (quantize) rather than just the written type (synth).
    TensorProgressPrinter(bool show_from, bool quiet);
    void operator()(const TensorProgress& ev);
    // Removes the live bar (call before printing anything else).
    void clear_bar();

  private:
    bool show_from_;
    bool quiet_;
    bool tty_;
    bool bar_shown_ = false;
};

// "32.0 MiB", "1.0 KiB", "4.07 GiB".
std::string format_bytes(uint64_t bytes);
// "[4096, 32768]": the tensor's dimensions, ne[0] first.
std::string format_shape(const std::array<uint64_t, 4>& ne, uint32_t n_dims);

}  // namespace kinfer::cli
