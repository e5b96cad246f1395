#pragma once
// The one exception hierarchy of kinfer. Callers catch kinfer::Error; subclasses exist only where a caller
// would react differently (a bad file vs. a bad argument).
#include <stdexcept>
#include <string>

#include "kinfer/export.hpp"

namespace kinfer {

class KINFER_API Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The input file (GGUF, prompt file, ...) is malformed or unsupported.
class KINFER_API FormatError : public Error {
  public:
    using Error::Error;
};

// A caller passed an invalid argument or option.
class KINFER_API UsageError : public Error {
  public:
    using Error::Error;
};

}  // namespace kinfer
