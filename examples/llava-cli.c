/*
 * llava-cli - ask a LLaVA model about images from the command line.
 *
 *   llava-cli -m LM.gguf --mmproj MMPROJ.gguf --image FILE -p "What is in the picture?"
 *
 * Streams the answer to stdout; progress (on a terminal) and a timing summary
 * go to stderr. Built only on the public API in llava.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llava.h"

#define MAX_IMAGES 16

typedef struct cli_options {
    const char *lm_path, *mmproj_path, *prompt, *system;
    const char *images[MAX_IMAGES];
    int n_images;
    const char *save_embed, *load_embed;
    int template_id;
    long n_predict;
    bool interactive, print_ids, quiet_timing;
} cli_options;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fputs(
"usage: llava-cli -m LM.gguf [--mmproj MMPROJ.gguf --image FILE ...] -p TEXT [options]\n"
"\n"
"Ask a LLaVA model about one or more images. The answer streams to stdout;\n"
"progress and timings go to stderr.\n"
"\n"
"Model and input:\n"
"  -m, --model FILE        language-model GGUF file (required)\n"
"      --mmproj FILE       vision encoder + projector GGUF file (needed for --image)\n"
"      --image FILE        PNG or JPEG image; repeat for several images (max 16)\n"
"  -p, --prompt TEXT       the question (placed after the images)\n"
"      --system TEXT       replace the template's system prompt\n"
"      --template NAME     prompt format: auto (default), llava-1.5, mistral, chatml\n"
"      --save-embed FILE   save the (first) image's embedding to FILE for reuse\n"
"      --image-embed FILE  use an embedding saved with --save-embed instead of --image\n"
"\n"
"Generation:\n"
"  -n, --n-predict N       most tokens per reply (default: until EOS / full context)\n"
"      --temp X            temperature; 0 = greedy (default 0.8)\n"
"      --top-k N           top-k, <= 0 disables (default 40)\n"
"      --top-p X           top-p, 1 disables (default 0.95)\n"
"      --min-p X           min-p, 0 disables (default 0.05)\n"
"      --repeat-penalty X  repetition penalty, 1 disables (default 1.0)\n"
"      --repeat-last-n N   penalty window (default 64)\n"
"      --frequency-penalty X, --presence-penalty X   (default 0)\n"
"  -s, --seed N            sampling seed (default: from the clock)\n"
"  -c, --ctx-size N        context size (default: the model's)\n"
"  -t, --threads N         compute threads (default: all cores)\n"
"\n"
"Modes and output:\n"
"  -i, --interactive       chat: read more questions from stdin after the first answer;\n"
"                          a line \"/image FILE\" adds an image to the next turn, \"/quit\" ends\n"
"      --print-ids         also print the generated token ids (one line, comma-separated) to stdout\n"
"      --no-timings        no timing summary on stderr\n"
"  -h, --help              this text\n"
"  -v, --version           the library version\n", f);
}

static int parse_template(const char *s)
{
    if (!strcmp(s, "auto")) return LLAVA_TEMPLATE_AUTO;
    if (!strcmp(s, "llava-1.5") || !strcmp(s, "vicuna")) return LLAVA_TEMPLATE_LLAVA_1_5;
    if (!strcmp(s, "mistral")) return LLAVA_TEMPLATE_MISTRAL;
    if (!strcmp(s, "chatml")) return LLAVA_TEMPLATE_CHATML;
    return -1;
}

/* Set one parameter from a command-line value, with a readable error. */
static bool set_param(llava_params *p, int key, const char *flag, const char *value)
{
    int type = 0;
    llava_get_param_info(key, &type, NULL, NULL, NULL);
    char *end;
    errno = 0;
    int rc;
    if (type == LLAVA_PARAM_TYPE_INT) {
        long long v = strtoll(value, &end, 10);
        if (errno || *end || end == value) goto bad;
        rc = llava_set_param_int(p, key, v);
    } else {
        double v = strtod(value, &end);
        if (errno || *end || end == value) goto bad;
        rc = llava_set_param_float(p, key, v);
    }
    if (rc == LLAVA_OK)
        return true;
    fprintf(stderr, "llava-cli: %s %s: %s\n", flag, value, llava_errmsg(p));
    return false;
bad:
    fprintf(stderr, "llava-cli: %s needs a number, not '%s'\n", flag, value);
    return false;
}

/* ---- progress bar on a terminal ---- */

typedef struct progress_state {
    const char *label;
    bool tty;
    int last;
} progress_state;

static int on_progress(float f, void *ud)
{
    progress_state *ps = ud;
    if (!ps->tty || !ps->label)
        return 0;
    int pct = (int)(f * 100.0f + 0.5f);
    if (pct == ps->last)
        return 0;
    ps->last = pct;
    int width = 30, filled = pct * width / 100;
    fprintf(stderr, "\r%-18s [", ps->label);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%%", pct);
    if (pct >= 100)
        fputs("\r\033[K", stderr);
    fflush(stderr);
    return 0;
}

/* ---- generation with streaming and timings ---- */

typedef struct gen_stats {
    double t_prompt, t_decode;
    long n_prompt, n_decode;
} gen_stats;

typedef struct id_list {
    int32_t *ids;
    size_t n, cap;
} id_list;

static int id_push(id_list *l, int32_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int32_t *p = realloc(l->ids, cap * sizeof *p);
        if (!p) return -1;
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

/* Generate one reply; t_turn_start is when the user turn started (its
 * prefill is counted from there to the first token). */
static int run_reply(llava_chat *chat, gen_stats *st, double t_turn_start, int32_t pos_turn_start, id_list *ids)
{
    llava_session *s = llava_chat_session(chat);
    bool first = true;
    double t_first = 0;
    for (;;) {
        int32_t tok;
        const char *piece;
        size_t len;
        int done;
        int rc = llava_chat_step(chat, &tok, &piece, &len, &done);
        if (rc != LLAVA_OK) {
            fprintf(stderr, "\nllava-cli: generation failed: %s: %s\n", llava_strerror(rc), llava_errmsg(chat));
            return rc;
        }
        double t = now_seconds();
        if (first) {
            t_first = t;
            st->t_prompt += t - t_turn_start;
            /* positions evaluated for the turn, minus the token just generated */
            st->n_prompt += llava_session_position(s) - pos_turn_start - (done ? 0 : 1);
            first = false;
        }
        if (done)
            break;
        st->n_decode++;
        if (ids && id_push(ids, tok) != 0)
            return LLAVA_E_NOMEM;
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    /* decode time: from the first token to the end (first token is prefill) */
    st->t_decode += now_seconds() - t_first;
    fputc('\n', stdout);
    return LLAVA_OK;
}

/* Encode an image file (or load a saved embedding) and add it to the turn. */
static int add_image(llava_chat *chat, llava_vision *vis, llava_projector *proj, llava_params *p,
                     const char *path, bool is_embed_file, const char *save_path,
                     progress_state *ps, double *t_encode)
{
    char err[LLAVA_ERRBUF_SIZE];
    llava_embed *emb = NULL;
    int rc;
    double t0 = now_seconds();
    if (is_embed_file) {
        rc = llava_embed_load_file(path, &emb, err, sizeof err);
        if (rc != LLAVA_OK) {
            fprintf(stderr, "llava-cli: %s: %s\n", path, err);
            return rc;
        }
    } else {
        if (!vis || !proj) {
            fprintf(stderr, "llava-cli: --image needs --mmproj\n");
            return LLAVA_E_INVALID_ARG;
        }
        llava_image *img = NULL;
        rc = llava_load_image(path, p, &img, err, sizeof err);
        if (rc != LLAVA_OK) {
            fprintf(stderr, "llava-cli: %s: %s\n", path, err);
            return rc;
        }
        ps->label = "encoding image";
        ps->last = -1;
        rc = llava_encode_image(vis, proj, img, p, &emb);
        if (rc != LLAVA_OK)
            fprintf(stderr, "llava-cli: encoding %s: %s: %s\n", path, llava_strerror(rc), llava_errmsg(img));
        llava_free_image(img);
        if (rc != LLAVA_OK)
            return rc;
    }
    *t_encode += now_seconds() - t0;
    if (save_path) {
        rc = llava_embed_save_file(emb, save_path);
        if (rc != LLAVA_OK)
            fprintf(stderr, "llava-cli: saving the embedding to %s: %s\n", save_path, llava_errmsg(emb));
    }
    if (rc == LLAVA_OK) {
        rc = llava_chat_add_image(chat, emb);
        if (rc != LLAVA_OK)
            fprintf(stderr, "llava-cli: %s: %s\n", path, llava_errmsg(chat));
    }
    llava_free_embed(emb);
    return rc;
}

static int parse_args(int argc, char **argv, cli_options *o, llava_params *p)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "llava-cli: %s needs a value\n", a); return 2; } i++; } while (0)
#define IS(x) (!strcmp(a, x))
        if (IS("-h") || IS("--help")) { usage(stdout); return 1; }
        else if (IS("-v") || IS("--version")) { printf("llava-cli (libllava %s)\n", llava_version_string()); return 1; }
        else if (IS("-m") || IS("--model")) { NEED_VALUE(); o->lm_path = v; }
        else if (IS("--mmproj")) { NEED_VALUE(); o->mmproj_path = v; }
        else if (IS("--image")) {
            NEED_VALUE();
            if (o->n_images == MAX_IMAGES) { fprintf(stderr, "llava-cli: at most %d images\n", MAX_IMAGES); return 2; }
            o->images[o->n_images++] = v;
        }
        else if (IS("-p") || IS("--prompt")) { NEED_VALUE(); o->prompt = v; }
        else if (IS("--system")) { NEED_VALUE(); o->system = v; }
        else if (IS("--template")) {
            NEED_VALUE();
            if ((o->template_id = parse_template(v)) < 0) {
                fprintf(stderr, "llava-cli: unknown template '%s' (auto, llava-1.5, mistral, chatml)\n", v);
                return 2;
            }
        }
        else if (IS("--save-embed")) { NEED_VALUE(); o->save_embed = v; }
        else if (IS("--image-embed")) { NEED_VALUE(); o->load_embed = v; }
        else if (IS("-n") || IS("--n-predict")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_MAX_TOKENS, a, v)) return 2; }
        else if (IS("--temp")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_TEMPERATURE, a, v)) return 2; }
        else if (IS("--top-k")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_TOP_K, a, v)) return 2; }
        else if (IS("--top-p")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_TOP_P, a, v)) return 2; }
        else if (IS("--min-p")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_MIN_P, a, v)) return 2; }
        else if (IS("--repeat-penalty")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_REPEAT_PENALTY, a, v)) return 2; }
        else if (IS("--repeat-last-n")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_REPEAT_LAST_N, a, v)) return 2; }
        else if (IS("--frequency-penalty")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_FREQUENCY_PENALTY, a, v)) return 2; }
        else if (IS("--presence-penalty")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_PRESENCE_PENALTY, a, v)) return 2; }
        else if (IS("-s") || IS("--seed")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_SEED, a, v)) return 2; }
        else if (IS("-c") || IS("--ctx-size")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_N_CTX, a, v)) return 2; }
        else if (IS("-t") || IS("--threads")) { NEED_VALUE(); if (!set_param(p, LLAVA_PARAM_N_THREADS, a, v)) return 2; }
        else if (IS("-i") || IS("--interactive")) o->interactive = true;
        else if (IS("--print-ids")) o->print_ids = true;
        else if (IS("--no-timings")) o->quiet_timing = true;
        else { fprintf(stderr, "llava-cli: unknown option '%s' (see --help)\n", a); return 2; }
#undef NEED_VALUE
#undef IS
    }
    if (!o->lm_path) { fprintf(stderr, "llava-cli: -m LM.gguf is required (see --help)\n"); return 2; }
    if (!o->prompt && !o->interactive) { fprintf(stderr, "llava-cli: -p TEXT is required unless -i (see --help)\n"); return 2; }
    if (o->n_images && !o->mmproj_path) { fprintf(stderr, "llava-cli: --image needs --mmproj\n"); return 2; }
    if (!set_param(p, LLAVA_PARAM_CHAT_TEMPLATE, "--template", o->template_id == LLAVA_TEMPLATE_AUTO ? "0" :
                   o->template_id == LLAVA_TEMPLATE_LLAVA_1_5 ? "1" : o->template_id == LLAVA_TEMPLATE_MISTRAL ? "2" : "3"))
        return 2;
    return 0;
}

static void print_ids(id_list *ids)
{
    for (size_t i = 0; i < ids->n; i++)
        printf("%s%d", i ? "," : "", (int)ids->ids[i]);
    putchar('\n');
    ids->n = 0;
}

int main(int argc, char **argv)
{
    cli_options o = { 0 };
    llava_params *p = llava_new_params();
    if (!p) { fprintf(stderr, "llava-cli: out of memory\n"); return 1; }
    int status = parse_args(argc, argv, &o, p);
    if (status) {
        llava_free_params(p);
        return status == 1 ? 0 : 2;
    }
    progress_state ps = { NULL, isatty(STDERR_FILENO) != 0, -1 };
    llava_set_progress_callback(p, on_progress, &ps);

    char err[LLAVA_ERRBUF_SIZE];
    llava_lm *lm = NULL;
    llava_vision *vis = NULL;
    llava_projector *proj = NULL;
    llava_chat *chat = NULL;
    id_list ids = { 0 };
    gen_stats st = { 0 };
    double t_encode = 0;
    int rc = LLAVA_OK;

    double t0 = now_seconds();
    ps.label = "loading model";
    if ((rc = llava_load_lm(o.lm_path, p, &lm, err, sizeof err)) != LLAVA_OK) {
        fprintf(stderr, "llava-cli: %s: %s\n", o.lm_path, err);
        goto done;
    }
    if (o.mmproj_path) {
        ps.label = "loading mmproj";
        ps.last = -1;
        if ((rc = llava_load_vision(o.mmproj_path, p, &vis, err, sizeof err)) != LLAVA_OK ||
            (rc = llava_load_projector(o.mmproj_path, p, &proj, err, sizeof err)) != LLAVA_OK) {
            fprintf(stderr, "llava-cli: %s: %s\n", o.mmproj_path, err);
            goto done;
        }
    }
    double t_load = now_seconds() - t0;
    if ((rc = llava_new_chat(lm, p, &chat, err, sizeof err)) != LLAVA_OK) {
        fprintf(stderr, "llava-cli: %s\n", err);
        goto done;
    }
    if (o.system && (rc = llava_chat_set_system(chat, o.system)) != LLAVA_OK) {
        fprintf(stderr, "llava-cli: %s\n", llava_errmsg(chat));
        goto done;
    }

    /* First turn: images (or a saved embedding), then the question. */
    double t_turn = now_seconds();
    int32_t pos_turn = llava_session_position(llava_chat_session(chat));
    double t_enc_before = t_encode;
    if (o.load_embed && (rc = add_image(chat, vis, proj, p, o.load_embed, true, NULL, &ps, &t_encode)) != LLAVA_OK)
        goto done;
    for (int i = 0; i < o.n_images; i++)
        if ((rc = add_image(chat, vis, proj, p, o.images[i], false, i == 0 ? o.save_embed : NULL, &ps, &t_encode)) != LLAVA_OK)
            goto done;
    t_turn += t_encode - t_enc_before; /* the encode is not prefill */
    if (o.prompt) {
        if ((rc = llava_chat_add_text(chat, o.prompt)) != LLAVA_OK) {
            fprintf(stderr, "llava-cli: %s\n", llava_errmsg(chat));
            goto done;
        }
        if ((rc = run_reply(chat, &st, t_turn, pos_turn, o.print_ids ? &ids : NULL)) != LLAVA_OK)
            goto done;
        if (o.print_ids)
            print_ids(&ids);
    }

    /* Interactive turns. */
    char line[8192];
    while (o.interactive) {
        fputs("> ", stderr);
        fflush(stderr);
        if (!fgets(line, sizeof line, stdin))
            break;
        line[strcspn(line, "\r\n")] = '\0';
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit"))
            break;
        if (!strncmp(line, "/image ", 7)) {
            if ((rc = add_image(chat, vis, proj, p, line + 7, false, NULL, &ps, &t_encode)) != LLAVA_OK)
                rc = LLAVA_OK; /* reported; the conversation goes on */
            continue;
        }
        if (line[0] == '\0')
            continue;
        t_turn = now_seconds();
        pos_turn = llava_session_position(llava_chat_session(chat));
        if ((rc = llava_chat_add_text(chat, line)) != LLAVA_OK) {
            fprintf(stderr, "llava-cli: %s\n", llava_errmsg(chat));
            goto done;
        }
        if ((rc = run_reply(chat, &st, t_turn, pos_turn, o.print_ids ? &ids : NULL)) != LLAVA_OK)
            goto done;
        if (o.print_ids)
            print_ids(&ids);
    }

    if (!o.quiet_timing) {
        fprintf(stderr, "\ntimings: load %.3f s | encode %.3f s | prefill %ld tok in %.3f s (%.1f tok/s) | "
                "decode %ld tok in %.3f s (%.1f tok/s)\n",
                t_load, t_encode, st.n_prompt, st.t_prompt, st.t_prompt > 0 ? st.n_prompt / st.t_prompt : 0.0,
                st.n_decode > 1 ? st.n_decode - 1 : 0, st.t_decode,
                st.t_decode > 0 && st.n_decode > 1 ? (st.n_decode - 1) / st.t_decode : 0.0);
    }
done:
    free(ids.ids);
    llava_free_chat(chat);
    llava_free_projector(proj);
    llava_free_vision(vis);
    llava_free_lm(lm);
    llava_free_params(p);
    return rc == LLAVA_OK ? 0 : 1;
}
