#pragma once
// Ctrl-C for `infer run` and `infer chat`: the first SIGINT only raises a flag that the generation loop
// polls (the reply stops, the program goes on); a second one while the flag is still up ends the process
// the usual way.
#include <atomic>

namespace kinfer::cli {

// Installs the SIGINT handler (once) and returns the flag it raises.
std::atomic<bool>& install_interrupt_handler();
// Lowers the flag after the interrupted reply was dealt with.
void clear_interrupt();

}  // namespace kinfer::cli
