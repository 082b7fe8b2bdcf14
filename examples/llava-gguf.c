/*
 * llava-gguf - print the contents of a GGUF file: version, alignment,
 * metadata (arrays shown as type, count and the first elements) and the
 * tensor table. Uses libllava's validating reader, so a malformed file is
 * reported with the reader's message and exit status 1.
 *
 *   llava-gguf [--no-arrays] [--full] [-n N] FILE...
 */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_show = 8;          /* array elements shown */
static int show_arrays = 1;
static size_t max_str = 160;    /* string bytes shown (0: all) */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: llava-gguf [options] FILE...\n"
            "Print the header, metadata and tensor table of GGUF files.\n"
            "  -n N          show the first N elements of arrays (default 8)\n"
            "  --no-arrays   show only the type and count of arrays\n"
            "  --full        do not shorten long strings\n"
            "  -h, --help    this help\n"
            "Exit status: 0 if every file is valid, 1 otherwise, 2 on bad usage.\n");
}

/* Bytes with ", \ and control bytes escaped; UTF-8 passes through. */
static void print_escaped(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (c < 0x20 || c == 0x7f)
                printf("\\x%02x", c);
            else
                putchar(c);
        }
    }
}

/* A string value, quoted and escaped, shortened unless --full. */
static void print_str(llv_str s)
{
    size_t n = s.len;
    int cut = 0;
    if (max_str && n > max_str) {
        n = max_str;
        cut = 1;
    }
    putchar('"');
    print_escaped(s.ptr, n);
    putchar('"');
    if (cut)
        printf("...(%zu bytes)", s.len);
}

static void print_scalar(const llv_gguf *g, int64_t i, int type)
{
    switch (type) {
    case LLV_GGUF_STRING: print_str(llv_gguf_kv_str(g, i)); break;
    case LLV_GGUF_BOOL: fputs(llv_gguf_kv_int(g, i) ? "true" : "false", stdout); break;
    case LLV_GGUF_FLOAT32: case LLV_GGUF_FLOAT64: printf("%.9g", llv_gguf_kv_float(g, i)); break;
    case LLV_GGUF_UINT64: printf("%llu", (unsigned long long)llv_gguf_kv_uint(g, i)); break;
    default: printf("%lld", (long long)llv_gguf_kv_int(g, i)); break;
    }
}

static void print_array(const llv_gguf *g, int64_t i)
{
    int et = llv_gguf_arr_type(g, i);
    uint64_t n = llv_gguf_arr_n(g, i);
    printf("array of %s [%llu]", llv_gguf_type_name(et), (unsigned long long)n);
    if (!show_arrays)
        return;
    fputs(" = [", stdout);
    uint64_t shown = n < (uint64_t)n_show ? n : (uint64_t)n_show;
    for (uint64_t j = 0; j < shown; j++) {
        if (j)
            fputs(", ", stdout);
        if (et == LLV_GGUF_STRING)
            print_str(llv_gguf_arr_str(g, i, j));
        else if (et == LLV_GGUF_FLOAT32 || et == LLV_GGUF_FLOAT64)
            printf("%.9g", llv_gguf_arr_get_float(g, i, j));
        else if (et == LLV_GGUF_BOOL)
            fputs(llv_gguf_arr_get_int(g, i, j) ? "true" : "false", stdout);
        else if (et == LLV_GGUF_UINT64)
            printf("%.0f", llv_gguf_arr_get_float(g, i, j));
        else
            printf("%lld", (long long)llv_gguf_arr_get_int(g, i, j));
    }
    fputs(shown < n ? ", ...]" : "]", stdout);
}

static int dump(const char *path)
{
    llv_gguf *g;
    llv_err err = { 0 };
    int rc = llv_gguf_open_file(path, 1, &g, &err);
    if (rc != LLAVA_OK) {
        fflush(stdout);
        fprintf(stderr, "llava-gguf: %s: %s\n", path, err.msg);
        return 1;
    }
    printf("file: %s\n", path);
    printf("version: %u\n", llv_gguf_version(g));
    printf("alignment: %zu\n", llv_gguf_alignment(g));
    printf("data offset: %zu\n", llv_gguf_data_offset(g));
    printf("file size: %zu\n", llv_gguf_file_size(g));

    int64_t n_kv = llv_gguf_n_kv(g);
    printf("metadata: %lld keys\n", (long long)n_kv);
    for (int64_t i = 0; i < n_kv; i++) {
        llv_str k = llv_gguf_key(g, i);
        int type = llv_gguf_kv_type(g, i);
        fputs("  ", stdout);
        print_escaped(k.ptr, k.len);
        if (type == LLV_GGUF_ARRAY) {
            fputs(": ", stdout);
            print_array(g, i);
        } else {
            printf(": %s = ", llv_gguf_type_name(type));
            print_scalar(g, i, type);
        }
        putchar('\n');
    }

    int64_t n_t = llv_gguf_n_tensors(g);
    size_t total = 0;
    printf("tensors: %lld\n", (long long)n_t);
    if (n_t > 0)
        printf("  %-5s %-40s %-8s %-28s %12s %12s\n", "#", "name", "type", "shape", "offset", "bytes");
    for (int64_t i = 0; i < n_t; i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        char shape[64];
        int len = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld", d ? " x " : "", (long long)t->ne[d]);
        printf("  %-5lld %-40s %-8s %-28s %12llu %12zu\n", (long long)i, t->name, llv_gguf_ggml_type_name(t->type),
               shape, (unsigned long long)t->offset, t->nbytes);
        total += t->nbytes;
    }
    if (n_t > 0)
        printf("tensor bytes: %zu\n", total);
    llv_gguf_close(g);
    return 0;
}

int main(int argc, char **argv)
{
    int first = 0, status = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-arrays")) {
            show_arrays = 0;
        } else if (!strcmp(a, "--full")) {
            max_str = 0;
        } else if (!strcmp(a, "-n") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1000000) {
                fprintf(stderr, "llava-gguf: bad -n value '%s'\n", argv[i]);
                return 2;
            }
            n_show = (int)v;
        } else if (!strcmp(a, "--")) {
            first = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "llava-gguf: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (!first || first >= argc) {
        usage(stderr);
        return 2;
    }
    for (int i = first; i < argc; i++) {
        if (i > first)
            putchar('\n');
        status |= dump(argv[i]);
    }
    return status;
}
