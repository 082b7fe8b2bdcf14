/*
 * bench_scenarios.c - the end-to-end commands of llava-bench: encode,
 * prefill, decode, ttft and all/table. Each scenario runs in a child
 * process (this same binary, hidden `__child` command, see bench_child.c)
 * so that its peak RSS (the child's VmHWM) belongs to that scenario alone.
 * `--make DIR` writes the models with llava-mkmodel and llava-quantize;
 * `--llama-bench PATH` runs llama.cpp on the same files (bench_llamacpp.c).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "llava.h"

extern char **environ;

#define MAX_LMS 16
#define MAX_RESULTS (BENCH_N_STAGES * MAX_LMS)

typedef struct scen_opts {
    bench_config cfg;
    const char *lm_paths[MAX_LMS];
    int n_lm;
    const char *mmproj_path;
    const char *models_dir, *make_dir, *make_preset, *vocab, *make_types, *json_path, *ttft_lm, *llama_bench;
    char made[MAX_LMS + 1][PATH_MAX]; /* paths written by --make */
} scen_opts;

static void usage(FILE *f, const char *cmd)
{
    fprintf(f,
            "usage: llava-bench %s [options]\n"
            "Models:\n"
            "  --lm FILE         an LM GGUF (repeat for several weight types)\n"
            "  --mmproj FILE     a CLIP mmproj GGUF (encode, ttft)\n"
            "  --models DIR      use every *.gguf in DIR (LMs and one mmproj, told apart by their header)\n"
            "  --make DIR        first write the models into DIR (files that exist are kept) with\n"
            "                    llava-mkmodel and llava-quantize (looked up next to llava-bench, then on PATH)\n"
            "  --make-preset P   tinyllama (default: TinyLlama-1.1B shape + CLIP ViT-L/14-336 mmproj)\n"
            "                    or tiny (a few-KB model for tests)\n"
            "  --make-types L    quantized LMs to make, comma-separated (default q8_0,q4_0,q4_k_m)\n"
            "  --vocab FILE      tokenizer for the tinyllama preset (default\n"
            "                    $LLAVA_TEST_DATA/vocab/ggml-vocab-llama-spm.gguf)\n"
            "Runs:\n"
            "  -r N              timed runs per scenario (default 3); min and median are reported\n"
            "  --threads N       threads for the library and the probes (default: all cores)\n"
            "  --no-warmup       no untimed warm-up run before the timed ones\n"
            "  -p N              prefill tokens (default 512)\n"
            "  -n N              decode tokens (default 128)\n"
            "  --prompt N        prompt tokens before decode (default 16)\n"
            "  --question N      text tokens after the image for ttft (default 30)\n"
            "  --ttft-lm FILE    run ttft with this one of the LMs only (default: with every LM)\n"
            "  --json FILE       also write the results as JSON\n"
            "  --llama-bench P   after each prefill and decode scenario, run llama.cpp's llama-bench (path P)\n"
            "                    on the same file with the same threads, runs and token counts (decode: -d for\n"
            "                    the prompt, which needs a llama-bench from 2025 on) and add its tok/s and our ratio\n"
            "The Markdown table goes to stdout, progress to stderr.\n",
            cmd);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_opts(scen_opts *o, const char *cmd, int argc, char **argv)
{
    o->cfg = (bench_config){ .threads = bench_default_threads(), .repeats = 3, .warmup = 1, .prefill_tokens = 512,
                             .decode_tokens = 128, .prompt_tokens = 16, .question_tokens = 30 };
    o->make_preset = "tinyllama";
    o->make_types = "q8_0,q4_0,q4_k_m";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, takes_value = 1;
        if (!strcmp(a, "--lm") && v) {
            if (o->n_lm == MAX_LMS) { fprintf(stderr, "llava-bench: at most %d --lm\n", MAX_LMS); return -1; }
            o->lm_paths[o->n_lm++] = v;
        } else if (!strcmp(a, "--mmproj") && v) o->mmproj_path = v;
        else if (!strcmp(a, "--models") && v) o->models_dir = v;
        else if (!strcmp(a, "--make") && v) o->make_dir = v;
        else if (!strcmp(a, "--make-preset") && v) o->make_preset = v;
        else if (!strcmp(a, "--make-types") && v) o->make_types = v;
        else if (!strcmp(a, "--vocab") && v) o->vocab = v;
        else if (!strcmp(a, "--json") && v) o->json_path = v;
        else if (!strcmp(a, "--ttft-lm") && v) o->ttft_lm = v;
        else if (!strcmp(a, "--llama-bench") && v) o->llama_bench = v;
        else if (!strcmp(a, "-r") && v) bad = parse_int(v, 1, BENCH_MAX_RUNS, &o->cfg.repeats);
        else if (!strcmp(a, "--threads") && v) bad = parse_int(v, 1, 1024, &o->cfg.threads);
        else if (!strcmp(a, "-p") && v) bad = parse_int(v, 1, 1 << 20, &o->cfg.prefill_tokens);
        else if (!strcmp(a, "-n") && v) bad = parse_int(v, 1, 1 << 20, &o->cfg.decode_tokens);
        else if (!strcmp(a, "--prompt") && v) bad = parse_int(v, 1, 1 << 20, &o->cfg.prompt_tokens);
        else if (!strcmp(a, "--question") && v) bad = parse_int(v, 1, 1 << 20, &o->cfg.question_tokens);
        else if (!strcmp(a, "--no-warmup")) { o->cfg.warmup = 0; takes_value = 0; }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout, cmd); exit(0); }
        else bad = 1;
        if (bad) {
            fprintf(stderr, "llava-bench %s: bad option '%s'%s%s\n", cmd, a, v ? " " : "", v && takes_value ? v : "");
            usage(stderr, cmd);
            return -1;
        }
        i += takes_value;
    }
    return 0;
}

/* ---- processes ---- */

static int self_path(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0) return -1;
    buf[n] = '\0';
    return 0;
}

/* Start exe (a path, or a name searched on PATH; NULL: argv[0]) with
 * stdout sent to stdout_fd (closed here) or to /dev/null if -1; returns its
 * pid, or -1. */
static int run_process(const char *exe, char *const argv[], int stdout_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdout_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, stdout_fd, STDOUT_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    if (!exe) exe = argv[0];
    int rc = strchr(exe, '/') ? posix_spawn(&pid, exe, &fa, NULL, argv, environ)
                              : posix_spawnp(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "llava-bench: cannot run %s: %s\n", exe, strerror(rc));
        return -1;
    }
    if (stdout_fd >= 0) close(stdout_fd);
    return (int)pid; /* caller waits */
}

int bench_spawn_reader(const char *exe, char *const argv[], FILE **out)
{
    int fds[2];
    *out = NULL;
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    const int pid = run_process(exe, argv, fds[1]);
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (!(*out = fdopen(fds[0], "r"))) {
        close(fds[0]);
        bench_wait(pid, NULL);
        return -1;
    }
    return pid;
}

int bench_wait(int pid, long *rss_kb)
{
    int status;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) return -1;
    if (rss_kb) *rss_kb = ru.ru_maxrss; /* Linux: kilobytes */
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- --make ---- */

/* A sibling tool of this binary if there is one, else the bare name (PATH). */
static void find_tool(const char *name, char *out, size_t size)
{
    char self[PATH_MAX];
    if (self_path(self, sizeof self) == 0) {
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            int len = snprintf(out, size, "%s/%s", self, name);
            if (len > 0 && (size_t)len < size && access(out, X_OK) == 0) return;
        }
    }
    snprintf(out, size, "%s", name);
}

void bench_log_command(char *const argv[])
{
    fprintf(stderr, "llava-bench: running");
    for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fputc('\n', stderr);
}

static int run_tool(char *const argv[])
{
    bench_log_command(argv);
    int pid = run_process(NULL, argv, -1);
    if (pid < 0) return -1;
    int st = bench_wait(pid, NULL);
    if (st != 0) fprintf(stderr, "llava-bench: %s failed (exit status %d)\n", argv[0], st);
    return st == 0 ? 0 : -1;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int make_models(scen_opts *o)
{
    int tiny = !strcmp(o->make_preset, "tiny");
    if (!tiny && strcmp(o->make_preset, "tinyllama")) {
        fprintf(stderr, "llava-bench: --make-preset must be tinyllama or tiny\n");
        return -1;
    }
    if (mkdir(o->make_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "llava-bench: cannot create %s: %s\n", o->make_dir, strerror(errno));
        return -1;
    }
    const char *stem = tiny ? "tiny" : "tinyllama";
    char mk[PATH_MAX], qz[PATH_MAX], f16[PATH_MAX], mmproj[PATH_MAX], vocab[PATH_MAX];
    find_tool("llava-mkmodel", mk, sizeof mk);
    find_tool("llava-quantize", qz, sizeof qz);
    snprintf(f16, sizeof f16, "%s/%s-f16.gguf", o->make_dir, stem);
    snprintf(mmproj, sizeof mmproj, "%s/%s", o->make_dir, tiny ? "tiny-mmproj.gguf" : "clipl-336.gguf");
    if (!exists(f16) || !exists(mmproj)) {
        if (!tiny) {
            const char *data = getenv("LLAVA_TEST_DATA");
            if (o->vocab) snprintf(vocab, sizeof vocab, "%s", o->vocab);
            else if (data) snprintf(vocab, sizeof vocab, "%s/vocab/ggml-vocab-llama-spm.gguf", data);
            else {
                fprintf(stderr, "llava-bench: the tinyllama preset needs a 32000-token vocabulary: --vocab "
                                "FILE (e.g. ggml-vocab-llama-spm.gguf) or LLAVA_TEST_DATA\n");
                return -1;
            }
            char *argv[] = { mk, "--preset", "tinyllama", "--preset", "clip-l-336", "--vocab", vocab,
                             "--out-lm", f16, "--out-mmproj", mmproj, NULL };
            if (run_tool(argv)) return -1;
        } else {
            char *argv[] = { mk, "--preset", "tiny", "--out-lm", f16, "--out-mmproj", mmproj, NULL };
            if (run_tool(argv)) return -1;
        }
    }
    int n = 0;
    snprintf(o->made[n++], PATH_MAX, "%s", f16);
    char types[256];
    snprintf(types, sizeof types, "%s", o->make_types);
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o->cfg.threads);
    for (char *save = NULL, *t = strtok_r(types, ",", &save); t && n < MAX_LMS; t = strtok_r(NULL, ",", &save)) {
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s/%s-%s.gguf", o->make_dir, stem, t);
        if (!exists(out)) {
            char *argv[] = { qz, f16, out, t, threads, NULL };
            if (run_tool(argv)) return -1;
        }
        snprintf(o->made[n++], PATH_MAX, "%s", out);
    }
    snprintf(o->made[MAX_LMS], PATH_MAX, "%s", mmproj);
    for (int i = 0; i < n && o->n_lm < MAX_LMS; i++)
        o->lm_paths[o->n_lm++] = o->made[i];
    if (!o->mmproj_path) o->mmproj_path = o->made[MAX_LMS];
    return 0;
}

/* ---- models ---- */

typedef struct model_set {
    bench_model lms[MAX_LMS];
    int n_lm;
    bench_model mmproj;
    int have_mmproj;
    char dir_paths[MAX_LMS + 1][PATH_MAX];
} model_set;

static int cmp_lm_size(const void *a, const void *b)
{
    const bench_model *x = a, *y = b;
    return x->file_bytes < y->file_bytes ? 1 : x->file_bytes > y->file_bytes ? -1 : strcmp(x->name, y->name);
}

static int add_model(model_set *ms, const char *path, int want_kind)
{
    char err[512];
    bench_model m;
    if (bench_model_read(path, &m, err, sizeof err) != 0) {
        fprintf(stderr, "llava-bench: %s\n", err);
        return -1;
    }
    if (want_kind && m.kind != want_kind) {
        fprintf(stderr, "llava-bench: %s is %s\n", path, m.kind == BENCH_LM ? "an LM, not an mmproj" : "an mmproj, not an LM");
        return -1;
    }
    if (m.kind == BENCH_MMPROJ) {
        if (ms->have_mmproj) {
            fprintf(stderr, "llava-bench: more than one mmproj (%s, %s); pass one with --mmproj\n", ms->mmproj.path, path);
            return -1;
        }
        ms->mmproj = m;
        ms->have_mmproj = 1;
    } else {
        if (ms->n_lm == MAX_LMS) return -1;
        ms->lms[ms->n_lm++] = m;
    }
    return 0;
}

static int scan_dir(model_set *ms, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "llava-bench: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int n = 0, rc = 0;
    while ((e = readdir(d)) && rc == 0) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf")) continue;
        if (n == MAX_LMS + 1) { rc = -1; break; }
        snprintf(ms->dir_paths[n], PATH_MAX, "%s/%s", dir, e->d_name);
        rc = add_model(ms, ms->dir_paths[n++], 0);
    }
    closedir(d);
    return rc;
}

/* ---- one scenario ---- */

static int run_scenario(const scen_opts *o, int stage, const bench_model *lm, const bench_model *mmproj,
                        const bench_machine *mach, bench_result *r)
{
    char self[PATH_MAX], thr[16], rep[16], warm[16], p[16], n[16], prompt[16], q[16];
    /* the child is started from /proc/self/exe, the running image even if
     * the file was rebuilt meanwhile; self is only its argv[0] */
    if (self_path(self, sizeof self) != 0) snprintf(self, sizeof self, "llava-bench");
    snprintf(thr, sizeof thr, "%d", o->cfg.threads);
    snprintf(rep, sizeof rep, "%d", o->cfg.repeats);
    snprintf(warm, sizeof warm, "%d", o->cfg.warmup);
    snprintf(p, sizeof p, "%d", o->cfg.prefill_tokens);
    snprintf(n, sizeof n, "%d", o->cfg.decode_tokens);
    snprintf(prompt, sizeof prompt, "%d", o->cfg.prompt_tokens);
    snprintf(q, sizeof q, "%d", o->cfg.question_tokens);
    char *argv[32];
    int k = 0;
    argv[k++] = self;
    argv[k++] = "__child";
    argv[k++] = (char *)bench_stage_name(stage);
    if (lm) { argv[k++] = "--lm"; argv[k++] = (char *)lm->path; }
    if (mmproj) { argv[k++] = "--mmproj"; argv[k++] = (char *)mmproj->path; }
    char *rest[] = { "--threads", thr, "-r", rep, "--warmup", warm, "-p", p, "-n", n, "--prompt", prompt,
                     "--question", q };
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) argv[k++] = rest[i];
    argv[k] = NULL;

    FILE *f = NULL;
    const int pid = bench_spawn_reader("/proc/self/exe", argv, &f);
    if (pid < 0) return -1;
    memset(r, 0, sizeof *r);
    r->stage = stage;
    r->lm = lm;
    r->mmproj = mmproj;
    double enc[BENCH_MAX_RUNS], pre[BENCH_MAX_RUNS], smp[BENCH_MAX_RUNS];
    int64_t decode_p0 = 0, kv_elem = 2, vmhwm_kb = -1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        int i;
        double t, a, b, c;
        long long v;
        int got = sscanf(line, "run %d %lf %lf %lf %lf", &i, &t, &a, &b, &c);
        if (got >= 2 && i >= 0 && i < BENCH_MAX_RUNS && r->n_runs < BENCH_MAX_RUNS) {
            r->times[r->n_runs] = t;
            if (got == 5) { enc[r->n_runs] = a; pre[r->n_runs] = b; smp[r->n_runs] = c; }
            r->n_runs++;
        } else if (sscanf(line, "tokens %lld", &v) == 1) r->tokens_measured = v;
        else if (sscanf(line, "image_tokens %lld", &v) == 1) r->image_tokens = v;
        else if (sscanf(line, "embed_width %lld", &v) == 1) r->embed_width = v;
        else if (sscanf(line, "n_ctx %lld", &v) == 1) r->n_ctx = v;
        else if (sscanf(line, "decode_p0 %lld", &v) == 1) decode_p0 = v;
        else if (sscanf(line, "kv_elem_bytes %lld", &v) == 1) kv_elem = v;
        else if (sscanf(line, "question_tokens %lld", &v) == 1) r->question_tokens = v;
        else if (sscanf(line, "vmhwm_kb %lld", &v) == 1) vmhwm_kb = v;
    }
    fclose(f);
    long rss_kb = 0;
    int st = bench_wait(pid, &rss_kb);
    if (st != 0 || r->n_runs != o->cfg.repeats) {
        fprintf(stderr, "llava-bench: %s scenario failed (exit status %d, %d of %d runs)\n", bench_stage_name(stage),
                st, r->n_runs, o->cfg.repeats);
        return -1;
    }
    /* the child's own VmHWM; ru_maxrss also holds the parent's high-water
     * mark (see bench_child.c), so it is only the fallback */
    r->peak_rss_bytes = (uint64_t)(vmhwm_kb > 0 ? vmhwm_kb : rss_kb) * 1024u;

    /* the work done, from the model shapes */
    switch (stage) {
    case BENCH_ENCODE:
        r->tokens_asked = bench_vision_n_patches(mmproj);
        r->flops_per_run = bench_encode_flops(mmproj);
        r->model_bytes = (double)mmproj->file_bytes;
        break;
    case BENCH_PREFILL:
        r->tokens_asked = o->cfg.prefill_tokens;
        r->flops_per_run = bench_lm_flops(lm, 0, r->tokens_measured, 1);
        break;
    case BENCH_DECODE:
        r->tokens_asked = o->cfg.decode_tokens;
        r->weight_bytes_per_token = (double)lm->decode_weight_bytes;
        r->kv_read_bytes_per_run = bench_kv_read_bytes(lm, decode_p0, r->tokens_measured, (int)kv_elem);
        break;
    default: /* ttft: BOS, image, question; one logit row per eval call */
        r->tokens_asked = 1 + bench_vision_n_patches(mmproj) + o->cfg.question_tokens;
        r->flops_per_run = bench_encode_flops(mmproj) + bench_lm_flops(lm, 0, r->tokens_measured, 3);
        r->model_bytes = (double)mmproj->file_bytes;
        r->encode_s = bench_median(enc, r->n_runs);
        r->prefill_s = bench_median(pre, r->n_runs);
        r->sample_s = bench_median(smp, r->n_runs);
        break;
    }
    if (lm) {
        r->model_bytes += (double)lm->file_bytes;
        r->kv_bytes = bench_kv_bytes(lm, r->n_ctx, (int)kv_elem);
    }
    /* llama.cpp right after, on the same file: same minutes, same machine
     * state (a failure is reported in the table and the exit status) */
    if (o->llama_bench && (stage == BENCH_PREFILL || stage == BENCH_DECODE))
        bench_llamacpp_run(o->llama_bench, &o->cfg, stage, lm->path, &r->llama);
    bench_result_finish(r, mach);
    return 0;
}

int bench_scenarios_main(unsigned stage_mask, const char *cmd, int argc, char **argv)
{
    static scen_opts o;
    static model_set ms;
    static bench_result results[MAX_RESULTS + 1];
    memset(&o, 0, sizeof o);
    memset(&ms, 0, sizeof ms);
    if (parse_opts(&o, cmd, argc, argv)) return 2;
    if (o.make_dir && make_models(&o)) return 1;
    if (o.models_dir && scan_dir(&ms, o.models_dir)) return 1;
    for (int i = 0; i < o.n_lm; i++)
        if (add_model(&ms, o.lm_paths[i], BENCH_LM)) return 1;
    if (o.mmproj_path && (!ms.have_mmproj || strcmp(ms.mmproj.path, o.mmproj_path))) {
        ms.have_mmproj = 0;
        if (add_model(&ms, o.mmproj_path, BENCH_MMPROJ)) return 1;
    }
    if (o.models_dir) qsort(ms.lms, (size_t)ms.n_lm, sizeof ms.lms[0], cmp_lm_size);

    const unsigned lm_only = (1u << BENCH_PREFILL) | (1u << BENCH_DECODE);
    int runnable = ((stage_mask & (1u << BENCH_ENCODE)) && ms.have_mmproj) || ((stage_mask & lm_only) && ms.n_lm) ||
                   ((stage_mask & (1u << BENCH_TTFT)) && ms.have_mmproj && ms.n_lm);
    if (!runnable) {
        fprintf(stderr, "llava-bench %s: nothing to run: give the models (--lm, --mmproj, --models or --make)\n", cmd);
        return 2;
    }

    if (o.ttft_lm) {
        int match = 0;
        for (int i = 0; i < ms.n_lm; i++)
            match += !strcmp(o.ttft_lm, ms.lms[i].path) || !strcmp(o.ttft_lm, ms.lms[i].name);
        if (!match) {
            fprintf(stderr, "llava-bench: --ttft-lm %s is not one of the LMs (give its path or file name)\n", o.ttft_lm);
            return 2;
        }
    }

    bench_machine mach = { .isa = bench_have_avx2_fma() ? "avx2+fma" : "generic", .threads = o.cfg.threads };
    fprintf(stderr, "llava-bench: probing the machine with %d thread(s)...\n", mach.threads);
    mach.fma_gflops = bench_probe_fma(mach.threads);
    mach.int8_gops = bench_probe_int8(mach.threads);
    mach.int16_gops = bench_probe_int16(mach.threads);
    bench_probe_bandwidth(mach.threads, &mach.copy_gbs, &mach.triad_gbs, &mach.read_gbs);
    fprintf(stderr, "llava-bench: FMA peak %.1f GFLOP/s, int8 peak %.1f GOP/s, int16 peak %.1f GOP/s, memory copy "
                    "%.1f GB/s, triad %.1f GB/s, read %.1f GB/s\n",
            mach.fma_gflops, mach.int8_gops, mach.int16_gops, mach.copy_gbs, mach.triad_gbs, mach.read_gbs);

    int nr = 0, failed = 0;
    const bench_model *mm = ms.have_mmproj ? &ms.mmproj : NULL;
    for (int stage = 0; stage < BENCH_N_STAGES; stage++) {
        if (!(stage_mask & (1u << stage))) continue;
        if (stage == BENCH_ENCODE) {
            if (!mm) continue;
            if (run_scenario(&o, stage, NULL, mm, &mach, &results[nr]) == 0) nr++;
            else failed++;
            continue;
        }
        if (stage == BENCH_TTFT && !mm) {
            fprintf(stderr, "llava-bench: no mmproj: ttft skipped\n");
            continue;
        }
        for (int i = 0; i < ms.n_lm; i++) {
            if (stage == BENCH_TTFT && o.ttft_lm && strcmp(o.ttft_lm, ms.lms[i].path) &&
                strcmp(o.ttft_lm, ms.lms[i].name))
                continue;
            if (run_scenario(&o, stage, &ms.lms[i], stage == BENCH_TTFT ? mm : NULL, &mach, &results[nr]) == 0)
                failed += results[nr++].llama.error[0] != '\0';
            else
                failed++;
        }
    }
    /* Probe again and keep the best: on a shared machine a probe taken in
     * a busy moment would understate the limit and inflate the fractions. */
    double fma2 = bench_probe_fma(mach.threads), int82 = bench_probe_int8(mach.threads);
    double int162 = bench_probe_int16(mach.threads), copy2, triad2, read2;
    bench_probe_bandwidth(mach.threads, &copy2, &triad2, &read2);
    fprintf(stderr, "llava-bench: probed again: FMA peak %.1f GFLOP/s, int8 peak %.1f GOP/s, int16 peak %.1f GOP/s, "
                    "memory copy %.1f GB/s, triad %.1f GB/s, read %.1f GB/s\n", fma2, int82, int162, copy2, triad2,
            read2);
    mach.fma_gflops = fmax(mach.fma_gflops, fma2);
    mach.int8_gops = fmax(mach.int8_gops, int82);
    mach.int16_gops = fmax(mach.int16_gops, int162);
    mach.copy_gbs = fmax(mach.copy_gbs, copy2);
    mach.triad_gbs = fmax(mach.triad_gbs, triad2);
    mach.read_gbs = fmax(mach.read_gbs, read2);
    for (int i = 0; i < nr; i++)
        bench_result_finish(&results[i], &mach);
    fflush(stderr);
    bench_print_table(stdout, results, nr, &mach, &o.cfg);
    if (o.json_path && bench_write_json(o.json_path, results, nr, &mach, &o.cfg) != 0) {
        fprintf(stderr, "llava-bench: cannot write %s\n", o.json_path);
        return 1;
    }
    return failed ? 1 : 0;
}
