#pragma once
// The read-only bytes of a model file (GGUF, safetensors): an mmap of the file, so a 7B model costs no copy
// and its pages are shared with the page cache, or a heap copy of bytes already in memory (tests, fuzzing).
// Movable; data() stays valid across moves.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kinfer {

class FileBytes {
  public:
    // Maps `path`. Throws Error naming the path if it cannot be opened, is not a regular file, or mmap fails.
    static FileBytes map(const std::string& path);
    static FileBytes copy(std::span<const uint8_t> bytes);
    FileBytes() = default;  // no bytes

    FileBytes(FileBytes&& other) noexcept;
    FileBytes& operator=(FileBytes&& other) noexcept;
    FileBytes(const FileBytes&) = delete;
    FileBytes& operator=(const FileBytes&) = delete;
    ~FileBytes();

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

  private:
    void release();

    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    int fd_ = -1;                // >= 0 when mapped
    std::vector<uint8_t> copy_;  // the bytes when copied
};

}  // namespace kinfer
