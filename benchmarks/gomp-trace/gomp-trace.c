// Prints each OpenMP parallel region libtorch opens (libgomp's GOMP_parallel) with the native frames that called it,
// while the file named by GOMP_TRACE_WHILE exists. Loaded with LD_PRELOAD; see README.md next to it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags);
static parallel_fn real_parallel;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

// libtorch ships libgomp under a hashed name (libgomp-<hash>.so.1) and is loaded without RTLD_GLOBAL, so RTLD_NEXT does
// not see it: find the loaded libgomp by name.
static int find_libgomp(struct dl_phdr_info *info, size_t size, void *found) {
    (void)size;
    if (strstr(info->dlpi_name, "libgomp") == NULL) return 0;
    void *handle = dlopen(info->dlpi_name, RTLD_NOLOAD | RTLD_LAZY);
    parallel_fn candidate = handle == NULL ? NULL : (parallel_fn)dlsym(handle, "GOMP_parallel");
    if (candidate == NULL || candidate == GOMP_parallel) return 0; // this library itself
    *(parallel_fn *)found = candidate;
    return 1;
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags) {
    if (real_parallel == NULL) dl_iterate_phdr(find_libgomp, &real_parallel);
    if (real_parallel == NULL) { fputs("gomp-trace: no libgomp loaded\n", stderr); abort(); }
    const char *marker = getenv("GOMP_TRACE_WHILE");
    if (marker != NULL && access(marker, F_OK) == 0) {
        void *frames[8];
        int count = backtrace(frames, 8);
        pthread_mutex_lock(&print_lock);
        fprintf(stderr, "GOMP_parallel threads=%u", threads);
        for (int i = 1; i < count; i++) {
            Dl_info info;
            fprintf(stderr, " | %s", dladdr(frames[i], &info) && info.dli_sname ? info.dli_sname : "?");
        }
        fputc('\n', stderr);
        pthread_mutex_unlock(&print_lock);
    }
    real_parallel(fn, data, threads, flags);
}
