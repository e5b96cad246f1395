// CUPTI injection library for the GPU machine: records every kernel's GPU start and end (CUDA graph nodes
// included, with PDL overlaps as they happen), or with KTRACE_GRAPH=1 one record per graph launch, and writes
// "name<TAB>start<TAB>end<TAB>gridX<TAB>blockX" lines (ns) to $KTRACE_OUT at exit. ncu times graph nodes one
// by one with caches flushed; this is the timeline of a real decode step. Not part of the build:
//   g++ -O2 -shared -fPIC -I$CUPTI_INC -DKREC=CUpti_ActivityKernelN -DGREC=CUpti_ActivityGraphTraceN \
//       scripts/dev/cuda_ktrace.cpp -L$CUPTI_LIB -lcupti -o /tmp/libktrace.so
//   CUDA_INJECTION64_PATH=/tmp/libktrace.so KTRACE_OUT=t.tsv infer bench -m F --device cuda -p 0 -n 64
//   python3 scripts/dev/cuda_ktrace_summary.py t.tsv embed_kernel 30     (per kernel, per step)
//   python3 scripts/dev/cuda_ktrace_gaps.py t.tsv 100                    (KTRACE_GRAPH=1: step time, gaps)
// N: the newest record versions cupti_activity.h defines (CUDA 13.0: Kernel10, GraphTrace2).
#include <cupti.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#ifndef GREC
#define GREC CUpti_ActivityGraphTrace2
#endif
#ifndef KREC
#define KREC CUpti_ActivityKernel9
#endif

namespace {
struct Rec {
    std::string name;
    unsigned long long start, end;
    unsigned grid, block;
};
std::vector<Rec>* recs = new std::vector<Rec>();
std::mutex mu;

void CUPTIAPI requested(uint8_t** buf, size_t* size, size_t* max_records) {
    *size = 8 << 20;
    *buf = static_cast<uint8_t*>(aligned_alloc(64, *size));
    *max_records = 0;
}

void CUPTIAPI completed(CUcontext, uint32_t, uint8_t* buf, size_t, size_t valid) {
    CUpti_Activity* r = nullptr;
    std::lock_guard<std::mutex> lock(mu);
    while (cuptiActivityGetNextRecord(buf, valid, &r) == CUPTI_SUCCESS) {
        if (r->kind == CUPTI_ACTIVITY_KIND_GRAPH_TRACE) {
            auto* g = reinterpret_cast<GREC*>(r);
            recs->push_back({"GRAPH", (unsigned long long)g->start, (unsigned long long)g->end, 0u, 0u});
        } else if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ||
                   r->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            auto* k = reinterpret_cast<KREC*>(r);
            recs->push_back({k->name ? k->name : "?", (unsigned long long)k->start,
                             (unsigned long long)k->end, (unsigned)k->gridX, (unsigned)k->blockX});
        }
    }
    free(buf);
}

void dump() {
    cuptiActivityFlushAll(1);
    const char* path = std::getenv("KTRACE_OUT");
    FILE* f = std::fopen(path ? path : "/tmp/ktrace.tsv", "w");
    if (!f) return;
    std::lock_guard<std::mutex> lock(mu);
    for (const Rec& r : *recs)
        std::fprintf(f, "%s\t%llu\t%llu\t%u\t%u\n", r.name.c_str(), r.start, r.end, r.grid, r.block);
    std::fclose(f);
    std::fprintf(stderr, "ktrace: %zu kernels\n", recs->size());
}
}  // namespace

extern "C" int InitializeInjection(void) {
    cuptiActivityRegisterCallbacks(requested, completed);
    if (std::getenv("KTRACE_GRAPH")) {
        if (cuptiActivityEnable(CUPTI_ACTIVITY_KIND_GRAPH_TRACE) != CUPTI_SUCCESS)
            std::fprintf(stderr, "ktrace: could not enable graph trace\n");
    } else if (cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS)
        std::fprintf(stderr, "ktrace: could not enable kernel activity\n");
    std::atexit(dump);
    return 1;
}
