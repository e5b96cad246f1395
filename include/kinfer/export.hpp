#pragma once
// Symbol visibility: the library is built with hidden visibility; only what is marked KINFER_API is exported.
#if defined(_WIN32)
#define KINFER_API
#else
#define KINFER_API __attribute__((visibility("default")))
#endif
