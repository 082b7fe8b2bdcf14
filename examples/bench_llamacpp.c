/*
 * bench_llamacpp.c - `--llama-bench PATH`: run llama.cpp's own benchmark
 * tool on the same GGUF file right after each prefill/decode scenario, so
 * the table compares the two libraries on one machine in the same minutes
 * (issue 8 quotes llama.cpp figures from another machine).
 *
 * The scenarios map onto llama-bench's tests:
 *   prefill P tokens        -> -p P -n 0        (its "ppP"; no -d, so any
 *                                                llama-bench runs it)
 *   decode N after a prompt -> -p 0 -n N -d D   (its "tgN" at depth D, the
 *                              prompt's D positions already in the cache)
 * both with -t THREADS -r RUNS -ngl 0 (CPU only) -o csv. llama-bench warms
 * up once and reports the mean tokens/s over its runs (avg_ts); we read that
 * column and build_commit from its CSV.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Split one CSV line into at most max fields in place: fields in double
 * quotes may hold commas, and "" inside them is one quote. Returns the
 * number of fields. */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            char *q = p + 1;
            for (;;) {
                if (*q == '\0' || *q == '\n' || *q == '\r') break;
                if (*q == '"') {
                    if (q[1] == '"') { *out++ = '"'; q += 2; continue; }
                    q++;
                    break;
                }
                *out++ = *q++;
            }
            p = q;
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') *out++ = *p++;
        }
        const char end = *p;
        *out = '\0';
        if (end != ',') break;
        p++;
    }
    return n;
}

#define CSV_MAX_FIELDS 128

int bench_llamacpp_parse_csv(FILE *f, bench_llamacpp *out, char *err, size_t err_size)
{
    char header[8192], line[8192];
    char *names[CSV_MAX_FIELDS], *vals[CSV_MAX_FIELDS];
    if (!fgets(header, sizeof header, f)) {
        snprintf(err, err_size, "no output");
        return -1;
    }
    const int nh = csv_split(header, names, CSV_MAX_FIELDS);
    int i_ts = -1, i_commit = -1;
    for (int i = 0; i < nh; i++) {
        if (!strcmp(names[i], "avg_ts")) i_ts = i;
        else if (!strcmp(names[i], "build_commit")) i_commit = i;
    }
    if (i_ts < 0) {
        snprintf(err, err_size, "no avg_ts column in its CSV header");
        return -1;
    }
    if (!fgets(line, sizeof line, f)) {
        snprintf(err, err_size, "no result row after the CSV header");
        return -1;
    }
    const int nv = csv_split(line, vals, CSV_MAX_FIELDS);
    char *end;
    const double ts = i_ts < nv ? strtod(vals[i_ts], &end) : 0.0;
    if (i_ts >= nv || end == vals[i_ts] || *end != '\0' || !(ts > 0)) {
        snprintf(err, err_size, "avg_ts is not a positive number");
        return -1;
    }
    out->tok_s = ts;
    snprintf(out->commit, sizeof out->commit, "%s", i_commit >= 0 && i_commit < nv ? vals[i_commit] : "");
    return 0;
}

int bench_llamacpp_run(const char *exe, const bench_config *cfg, int stage, const char *model, bench_llamacpp *out)
{
    char thr[16], rep[16], p[16], n[16], d[16];
    snprintf(thr, sizeof thr, "%d", cfg->threads);
    snprintf(rep, sizeof rep, "%d", cfg->repeats);
    snprintf(p, sizeof p, "%d", stage == BENCH_PREFILL ? cfg->prefill_tokens : 0);
    snprintf(n, sizeof n, "%d", stage == BENCH_DECODE ? cfg->decode_tokens : 0);
    snprintf(d, sizeof d, "%d", cfg->prompt_tokens);
    char *argv[20];
    int k = 0;
    char *common[] = { (char *)exe, "-m", (char *)model, "-t", thr, "-r", rep, "-p", p, "-n", n };
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) argv[k++] = common[i];
    if (stage == BENCH_DECODE) { /* the prompt already in the cache (llama-bench 2025+) */
        argv[k++] = "-d";
        argv[k++] = d;
    }
    char *tail[] = { "-ngl", "0", "-o", "csv", NULL };
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) argv[k++] = tail[i];
    memset(out, 0, sizeof *out);
    out->ran = 1;
    bench_log_command(argv);

    FILE *f = NULL;
    const int pid = bench_spawn_reader(exe, argv, &f);
    if (pid < 0) {
        snprintf(out->error, sizeof out->error, "cannot run %s", exe);
        return -1;
    }
    char err[200] = "";
    const int parsed = bench_llamacpp_parse_csv(f, out, err, sizeof err);
    while (fgetc(f) != EOF) {} /* let it finish writing */
    fclose(f);
    const int st = bench_wait(pid, NULL);
    if (st < 0)
        snprintf(out->error, sizeof out->error, "%s did not exit normally (killed by a signal?)", exe);
    else if (st != 0)
        snprintf(out->error, sizeof out->error, "%s exited with status %d", exe, st);
    else if (parsed != 0)
        snprintf(out->error, sizeof out->error, "%s: %s", exe, err);
    if (out->error[0]) {
        fprintf(stderr, "llava-bench: llama-bench: %s\n", out->error);
        out->tok_s = 0;
        return -1;
    }
    return 0;
}
