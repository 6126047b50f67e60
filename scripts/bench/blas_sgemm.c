/* SGEMM rates of a BLAS library at the forward pass's shapes (1024 rows), for comparing GEMM
 * backends on one machine; docs/benchmarks.md § Model runtime has a run. Loads the library given
 * as the first argument with dlopen and calls its cblas_sgemm for about a second per shape.
 *
 *   cc -O2 scripts/bench/blas_sgemm.c -o /tmp/blas_sgemm -ldl
 *   BLIS_NUM_THREADS=2 /tmp/blas_sgemm /usr/lib/x86_64-linux-gnu/blis-pthread/libblis.so.4
 *   OPENBLAS_NUM_THREADS=2 /tmp/blas_sgemm /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
 *   MKL_THREADING_LAYER=GNU MKL_NUM_THREADS=2 LD_LIBRARY_PATH=$MKL_LIB /tmp/blas_sgemm $MKL_LIB/libmkl_rt.so.3
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBRARY.so\n", argv[0]);
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    sgemm_fn sgemm = (sgemm_fn)dlsym(library, "cblas_sgemm");
    if (!sgemm) {
        fprintf(stderr, "no cblas_sgemm in %s\n", argv[1]);
        return 1;
    }
    /* (K, N) of GPT-2's QKV, output, MLP in and MLP out, then pythia-70m's QKV, MLP in and out. */
    const int shapes[][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}, {512, 1536}, {512, 2048}, {2048, 512}};
    const int m = 1024;
    enum { ROW_MAJOR = 101, NO_TRANS = 111 };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int k = shapes[s][0], n = shapes[s][1];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < (long)m * k; i++) a[i] = (float)rand() / RAND_MAX;
        for (long i = 0; i < (long)k * n; i++) b[i] = (float)rand() / RAND_MAX;
        for (int warm = 0; warm < 3; warm++) sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.f, a, k, b, n, 0.f, c, n);
        double best = 1e9, total = 0, start = seconds();
        int runs = 0;
        while (seconds() - start < 1.0) {
            double before = seconds();
            sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.f, a, k, b, n, 0.f, c, n);
            double taken = seconds() - before;
            best = taken < best ? taken : best;
            total += taken;
            runs++;
        }
        double flop = 2.0 * m * n * k;
        printf("%dx%dx%d best %.0f mean %.0f GFLOP/s\n", m, k, n, flop / best / 1e9, flop / (total / runs) / 1e9);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
