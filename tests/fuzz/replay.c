/*
 * replay.c - runs one fuzz harness (linked in) over files, without
 * libFuzzer: the regression test of `make check`. With no arguments it
 * replays the committed seeds and past findings of its harness:
 *   FUZZ_SRC_DIR/corpus/FUZZ_HARNESS/  and  FUZZ_SRC_DIR/regressions/FUZZ_HARNESS/
 * With arguments it replays those files or directories (e.g. a crash
 * artifact under gdb). A failing property aborts, so the test fails.
 * Files named reject-* must moreover be rejected with a clean error (the
 * harness sets fuzz_rejected): one per malformed input class.
 */
#include "fuzz.h"

#include <dirent.h>
#include <sys/stat.h>

#ifndef FUZZ_HARNESS
#define FUZZ_HARNESS "harness"
#endif
#ifndef FUZZ_SRC_DIR
#define FUZZ_SRC_DIR "tests/fuzz"
#endif

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static long replay_file(const char *path)
{
    size_t size = 0;
    uint8_t *data = fuzz_read_file(path, &size);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        exit(1);
    }
    /* an exact-size copy, as libFuzzer passes it, so ASan sees over-reads */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        exit(1);
    memcpy(copy, data, size);
    free(data);
    fuzz_rejected = 0;
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "reject-", 7) == 0 && !fuzz_rejected) {
        fprintf(stderr, "replay: %s was accepted, but its name says it must be rejected\n", path);
        exit(1);
    }
    return 1;
}

static long replay_path(const char *path, int must_exist)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (must_exist) {
            fprintf(stderr, "replay: %s does not exist\n", path);
            exit(1);
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                exit(1);
            names = nn;
        }
        size_t len = strlen(path) + strlen(de->d_name) + 2;
        names[n] = malloc(len);
        if (!names[n])
            exit(1);
        snprintf(names[n], len, "%s/%s", path, de->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        count += replay_path(names[i], 1);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    long count = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            count += replay_path(argv[i], 1);
    } else {
        static const char *const kinds[2] = { "corpus", "regressions" };
        for (int k = 0; k < 2; k++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%s/%s", FUZZ_SRC_DIR, kinds[k], FUZZ_HARNESS);
            long c = replay_path(dir, 0);
            printf("%s: %ld %s inputs replayed\n", FUZZ_HARNESS, c, kinds[k]);
            count += c;
        }
        if (count == 0) {
            fprintf(stderr, "replay: no inputs for %s under %s\n", FUZZ_HARNESS, FUZZ_SRC_DIR);
            return 1;
        }
    }
    printf("%s: ok (%ld inputs)\n", FUZZ_HARNESS, count);
    return 0;
}
