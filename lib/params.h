/*
 * params.h - the params object behind llava_params and how other modules
 * read it. Every reader accepts NULL params and then gets the defaults.
 */
#ifndef LLV_PARAMS_H
#define LLV_PARAMS_H

#include "handle.h"

/* Number of keys in the table (params.c). */
#define LLV_N_PARAMS 18

struct llava_params {
    llv_handle hdr;
    double values[LLV_N_PARAMS];   /* int keys are stored exactly (all bounds < 2^53 except SEED, see params.c) */
    int64_t ivalues[LLV_N_PARAMS]; /* exact copy for int keys */
    llava_progress_fn progress; void *progress_ud;
    llava_abort_fn abort; void *abort_ud;
    llava_log_fn log; void *log_ud;
};

/* Read a key; NULL params give the default. Unknown key: 0. */
LLV_INTERNAL int64_t llv_param_int(const llava_params *p, int key);
LLV_INTERNAL double llv_param_float(const llava_params *p, int key);

/* A snapshot of the callbacks, which sessions and encoders keep. */
typedef struct llv_callbacks {
    llava_progress_fn progress; void *progress_ud;
    llava_abort_fn abort; void *abort_ud;
    llava_log_fn log; void *log_ud;
} llv_callbacks;

LLV_INTERNAL llv_callbacks llv_param_callbacks(const llava_params *p);
/* True if the abort callback asks to stop. */
static inline bool llv_should_abort(const llv_callbacks *cb) { return cb && cb->abort && cb->abort(cb->abort_ud) != 0; }
/* Report progress; returns true if the callback asked to stop. */
static inline bool llv_report_progress(const llv_callbacks *cb, float f) { return cb && cb->progress && cb->progress(f, cb->progress_ud) != 0; }
LLV_INTERNAL void llv_log(const llv_callbacks *cb, int level, const char *fmt, ...) LLV_PRINTF(3, 4);

#endif /* LLV_PARAMS_H */
