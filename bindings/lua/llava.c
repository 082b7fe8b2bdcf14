/*
 * llava.c - the Lua module `llava` (luaopen_llava): libllava for Lua 5.4 and
 * LuaJIT / Lua 5.1.
 *
 * Copyright (c) 2026 The libllava authors. MIT licence, see COPYING.
 *
 * Rules this file keeps:
 * - Every libllava handle lives in a full userdata with __gc (and __close in
 *   5.4). Constructors create the userdata first with a NULL handle, then
 *   load into it (liolib's newfile pattern): once the C call succeeds the
 *   handle is owned by the userdata, so a later Lua error cannot leak it.
 * - Expected failures (a missing file, a value out of range, a full context)
 *   return nil, message, code. Misuse (wrong argument types, a closed
 *   handle) raises through luaL_check* / luaL_argerror.
 * - Temporary C buffers are Lua userdata, so raising never leaks them.
 * - libllava callbacks (progress, abort, log, token) never let a Lua error
 *   cross the C frames: all Lua work inside them runs in protected mode.
 * - A handle that another depends on (an LM under its sessions and chats)
 *   is anchored in the dependant's user value; closing it explicitly closes
 *   the dependants first.
 *
 * Deliberately unbound functions of llava.h (read by bindings/check_bound.py):
 *   UNBOUND: (none)
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#  define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#endif
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "llava.h"

#if defined(__linux__)
#  include <dlfcn.h>
#endif

/* ---------------------------------------------------------------------- */
/* Lua 5.1 / LuaJIT compatibility                                          */

#if LUA_VERSION_NUM < 502
#  define lua_rawlen(L, i) lua_objlen(L, (i))
static int lua_absindex(lua_State *L, int i)
{
    return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#endif

static void *new_udata(lua_State *L, size_t size)
{
#if LUA_VERSION_NUM >= 504
    return lua_newuserdatauv(L, size, 1);
#else
    return lua_newuserdata(L, size);
#endif
}

/* The user value of the userdata at idx (a table, set at creation). */
static void push_uservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_getiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_getuservalue(L, idx);
#else
    lua_getfenv(L, idx);
#endif
}

static void set_uservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_setiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_setuservalue(L, idx);
#else
    lua_setfenv(L, idx);
#endif
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                 */

enum kind { K_PARAMS, K_LM, K_SESSION, K_VISION, K_PROJECTOR, K_IMAGE, K_EMBED, K_CHAT, K_COUNT };

static const char *const kind_mt[K_COUNT] = {
    "llava.params", "llava.lm", "llava.session", "llava.vision",
    "llava.projector", "llava.image", "llava.embed", "llava.chat",
};

/* Callback state of a params object. Handles made with those params point
 * here (and anchor the params userdata, so the memory stays). */
typedef struct cbctx {
    lua_State *L;       /* the thread of the call in progress, NULL outside calls */
    int failed;         /* a Lua callback raised during the last call */
    char msg[256];      /* its message */
} cbctx;

typedef struct lhandle {
    void *h;            /* the libllava handle; NULL once closed */
    int kind;
    int owned;          /* 0: borrowed (a chat's session), never freed here */
    cbctx *cb[2];       /* callbacks the C object may call: of its own params, of its
                           parent's (an LM under a session or chat); NULL if none */
} lhandle;

typedef struct lparams {
    lhandle base;
    cbctx cb;
} lparams;

/* Registry key of a weak-valued table: light userdata (cbctx*) -> params userdata. */
static const char CBMAP_KEY[] = "llava.cbmap";

static void free_handle(lhandle *u)
{
    void *h = u->h;
    u->h = NULL;
    if (!h || !u->owned)
        return;
    switch (u->kind) {
    case K_PARAMS:    llava_free_params(h); break;
    case K_LM:        llava_free_lm(h); break;
    case K_SESSION:   llava_free_session(h); break;
    case K_VISION:    llava_free_vision(h); break;
    case K_PROJECTOR: llava_free_projector(h); break;
    case K_IMAGE:     llava_free_image(h); break;
    case K_EMBED:     llava_free_embed(h); break;
    case K_CHAT:      llava_free_chat(h); break;
    }
}

/* Push a new handle userdata of a kind with a NULL handle, its metatable and
 * a fresh user-value table { children = weak-keyed set }. */
static lhandle *new_handle(lua_State *L, int kind)
{
    size_t size = kind == K_PARAMS ? sizeof(lparams) : sizeof(lhandle);
    lhandle *u = new_udata(L, size);
    memset(u, 0, size);
    u->kind = kind;
    u->owned = 1;
    luaL_getmetatable(L, kind_mt[kind]);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_newtable(L);                     /* children */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "children");
    set_uservalue(L, -2);
    return u;
}

/* uv(ud)[key] = value at vidx. */
static void anchor(lua_State *L, int ud, const char *key, int vidx)
{
    ud = lua_absindex(L, ud);
    vidx = lua_absindex(L, vidx);
    push_uservalue(L, ud);
    lua_pushvalue(L, vidx);
    lua_setfield(L, -2, key);
    lua_pop(L, 1);
}

/* Record the child userdata at cidx among the dependants of parent pidx. */
static void add_child(lua_State *L, int pidx, int cidx)
{
    pidx = lua_absindex(L, pidx);
    cidx = lua_absindex(L, cidx);
    push_uservalue(L, pidx);
    lua_getfield(L, -1, "children");
    lua_pushvalue(L, cidx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 2);
}

/* Close the dependants of the handle at idx, then the handle itself. */
static void close_handle(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lhandle *u = lua_touserdata(L, idx);
    push_uservalue(L, idx);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "children");
        if (lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                lua_pop(L, 1);
                if (lua_touserdata(L, -1))
                    close_handle(L, -1);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (u)
        free_handle(u);
}

static lhandle *check_handle(lua_State *L, int idx, int kind)
{
    lhandle *u = luaL_checkudata(L, idx, kind_mt[kind]);
    if (!u->h)
        luaL_argerror(L, idx, "the handle is closed");
    return u;
}

#define CHECK(L, i, K, T) ((T *)check_handle((L), (i), (K))->h)

/* nil, message, code */
static int push_fail(lua_State *L, int code, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg && *msg ? msg : llava_strerror(code));
    lua_pushinteger(L, code);
    return 3;
}

/* ---------------------------------------------------------------------- */
/* Callbacks: Lua work in protected mode only                              */

/* Run f(ud) in protected mode on L. Returns 0, or -1 with the error message
 * copied into msg. Never raises. */
static int run_protected(lua_State *L, lua_CFunction f, void *ud, char *msg, size_t msg_size)
{
    int top = lua_gettop(L);
#if LUA_VERSION_NUM >= 502
    if (!lua_checkstack(L, 3)) {
        snprintf(msg, msg_size, "Lua stack overflow in a callback");
        return -1;
    }
    lua_pushcfunction(L, f); /* a light C function: no allocation */
    lua_pushlightuserdata(L, ud);
    int rc = lua_pcall(L, 1, 0, 0);
#else
    int rc = lua_cpcall(L, f, ud);
#endif
    if (rc != 0) {
        const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
        snprintf(msg, msg_size, "callback error: %s", m);
    }
    lua_settop(L, top);
    return rc == 0 ? 0 : -1;
}

/* Push the Lua function `field` of the params whose cbctx is cb, or nil. */
static void push_callback(lua_State *L, cbctx *cb, const char *field)
{
    lua_getfield(L, LUA_REGISTRYINDEX, CBMAP_KEY);
    lua_pushlightuserdata(L, cb);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (lua_isuserdata(L, -1)) {
        push_uservalue(L, -1);
        lua_remove(L, -2);
        lua_getfield(L, -1, field);
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

typedef struct cb_args {
    cbctx *cb;
    const char *field;
    int nargs;
    double num;          /* progress */
    int level;           /* log */
    const char *text;    /* log message */
    int result;          /* true -> stop */
} cb_args;

static int cb_protected(lua_State *L)
{
    cb_args *a = lua_touserdata(L, 1);
    push_callback(L, a->cb, a->field);
    if (lua_isnil(L, -1))
        return 0;
    if (a->text) {
        lua_pushinteger(L, a->level);
        lua_pushstring(L, a->text);
    } else if (a->nargs == 1) {
        lua_pushnumber(L, a->num);
    }
    lua_call(L, a->nargs, 1);
    a->result = lua_toboolean(L, -1);
    return 0;
}

static int cb_dispatch(cb_args *a)
{
    cbctx *cb = a->cb;
    if (!cb || !cb->L || cb->failed)
        return cb && cb->failed; /* after a failure: keep asking to stop */
    if (run_protected(cb->L, cb_protected, a, cb->msg, sizeof cb->msg) != 0) {
        cb->failed = 1;
        return 1;
    }
    return a->result;
}

static int progress_thunk(float progress, void *ud)
{
    cb_args a = { ud, "progress", 1, progress, 0, NULL, 0 };
    return cb_dispatch(&a);
}

static int abort_thunk(void *ud)
{
    cb_args a = { ud, "abort", 0, 0, 0, NULL, 0 };
    return cb_dispatch(&a);
}

static void log_thunk(int level, const char *message, void *ud)
{
    cb_args a = { ud, "log", 2, 0, level, message ? message : "", 0 };
    cbctx *cb = ud;
    int failed = cb ? cb->failed : 0;
    cb_dispatch(&a);
    if (cb)
        cb->failed = failed; /* a failing logger does not stop the work */
}

/* Around every call that may run callbacks: who runs them, and whether one
 * failed. Saves the outer state so nested calls work. */
#define MAX_SCOPE 4
typedef struct cbscope {
    int n;
    cbctx *cb[MAX_SCOPE];
    lua_State *saved_L[MAX_SCOPE];
    int saved_failed[MAX_SCOPE];
} cbscope;

static void cb_add(cbscope *s, lua_State *L, cbctx *cb)
{
    if (!cb || s->n == MAX_SCOPE)
        return;
    for (int i = 0; i < s->n; i++)
        if (s->cb[i] == cb)
            return;
    s->cb[s->n] = cb;
    s->saved_L[s->n] = cb->L;
    s->saved_failed[s->n] = cb->failed;
    s->n++;
    cb->L = L;
    cb->failed = 0;
    cb->msg[0] = '\0';
}

/* Enter the callbacks of a handle (its own and its parent's). */
static void cb_enter(cbscope *s, lua_State *L, const lhandle *u)
{
    s->n = 0;
    if (u) {
        cb_add(s, L, u->cb[0]);
        cb_add(s, L, u->cb[1]);
    }
}

/* Leave; if a callback failed, returns 1 and copies its message. */
static int cb_leave(cbscope *s, char *msg, size_t msg_size)
{
    int failed = 0;
    for (int i = s->n - 1; i >= 0; i--) {
        cbctx *cb = s->cb[i];
        if (cb->failed && !failed && msg)
            snprintf(msg, msg_size, "%s", cb->msg);
        failed |= cb->failed;
        cb->L = s->saved_L[i];
        cb->failed = s->saved_failed[i];
    }
    return failed;
}

/* ---------------------------------------------------------------------- */
/* Params                                                                  */

static const struct { const char *name; int key; } param_names[] = {
    { "n_threads", LLAVA_PARAM_N_THREADS },   { "threads", LLAVA_PARAM_N_THREADS },
    { "use_mmap", LLAVA_PARAM_USE_MMAP },     { "mmap", LLAVA_PARAM_USE_MMAP },
    { "n_ctx", LLAVA_PARAM_N_CTX },           { "kv_type", LLAVA_PARAM_KV_TYPE },
    { "n_batch", LLAVA_PARAM_N_BATCH },       { "seed", LLAVA_PARAM_SEED },
    { "temperature", LLAVA_PARAM_TEMPERATURE }, { "top_k", LLAVA_PARAM_TOP_K },
    { "top_p", LLAVA_PARAM_TOP_P },           { "min_p", LLAVA_PARAM_MIN_P },
    { "repeat_penalty", LLAVA_PARAM_REPEAT_PENALTY }, { "repeat_last_n", LLAVA_PARAM_REPEAT_LAST_N },
    { "frequency_penalty", LLAVA_PARAM_FREQUENCY_PENALTY },
    { "presence_penalty", LLAVA_PARAM_PRESENCE_PENALTY },
    { "image_max_pixels", LLAVA_PARAM_IMAGE_MAX_PIXELS },
    { "image_exif_orient", LLAVA_PARAM_IMAGE_EXIF_ORIENT },
    { "chat_template", LLAVA_PARAM_CHAT_TEMPLATE }, { "template", LLAVA_PARAM_CHAT_TEMPLATE },
    { "max_tokens", LLAVA_PARAM_MAX_TOKENS },
};

static const struct { const char *name; int value; } template_names[] = {
    { "auto", LLAVA_TEMPLATE_AUTO }, { "llava-1.5", LLAVA_TEMPLATE_LLAVA_1_5 },
    { "llava_1_5", LLAVA_TEMPLATE_LLAVA_1_5 }, { "vicuna", LLAVA_TEMPLATE_LLAVA_1_5 },
    { "mistral", LLAVA_TEMPLATE_MISTRAL }, { "chatml", LLAVA_TEMPLATE_CHATML },
};

/* A key: a name (unknown names raise: they are typos) or an integer (an
 * unknown integer is left for the library to reject with E_UNSUPPORTED). */
static int check_key(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        for (size_t i = 0; i < sizeof param_names / sizeof param_names[0]; i++)
            if (strcmp(name, param_names[i].name) == 0)
                return param_names[i].key;
        return luaL_argerror(L, idx, lua_pushfstring(L, "unknown parameter name '%s'", name));
    }
    lua_Number n = luaL_checknumber(L, idx);
    luaL_argcheck(L, n == floor(n) && fabs(n) < 2147483648.0, idx, "parameter key must be an integer");
    return (int)n;
}

static lparams *check_params(lua_State *L, int idx)
{
    return (lparams *)check_handle(L, idx, K_PARAMS);
}

/* Set key = value at vidx. Returns 0 or pushes nil, msg, code and returns 3. */
static int params_set_value(lua_State *L, lparams *p, int key, int vidx)
{
    int type = 0;
    int rc = llava_get_param_info(key, &type, NULL, NULL, NULL);
    if (rc != LLAVA_OK) {
        rc = llava_set_param_int(p->base.h, key, 0); /* the library's own message */
        return push_fail(L, rc, llava_errmsg(p->base.h));
    }
    if (type == LLAVA_PARAM_TYPE_INT) {
        int64_t v;
        if (lua_type(L, vidx) == LUA_TBOOLEAN) {
            v = lua_toboolean(L, vidx);
        } else if (lua_type(L, vidx) == LUA_TSTRING && key == LLAVA_PARAM_CHAT_TEMPLATE) {
            const char *s = lua_tostring(L, vidx);
            size_t i, n = sizeof template_names / sizeof template_names[0];
            for (i = 0; i < n && strcmp(s, template_names[i].name) != 0; i++)
                ;
            if (i == n)
                return luaL_argerror(L, vidx, lua_pushfstring(L, "unknown chat template '%s'", s));
            v = template_names[i].value;
        } else if (lua_type(L, vidx) == LUA_TSTRING && key == LLAVA_PARAM_KV_TYPE) {
            const char *s = lua_tostring(L, vidx);
            if (strcmp(s, "f32") != 0 && strcmp(s, "f16") != 0)
                return luaL_argerror(L, vidx, "kv_type is 'f32' or 'f16'");
            v = strcmp(s, "f16") == 0;
        } else {
#if LUA_VERSION_NUM >= 503
            if (lua_isinteger(L, vidx)) {
                v = (int64_t)lua_tointeger(L, vidx);
            } else
#endif
            {
                if (lua_type(L, vidx) != LUA_TNUMBER)
                    return luaL_argerror(L, vidx, "number expected for an int parameter");
                lua_Number n = lua_tonumber(L, vidx);
                if (n != floor(n) || !(fabs(n) < 9223372036854775808.0))
                    return luaL_argerror(L, vidx, "integer expected for an int parameter");
                v = (int64_t)n;
            }
        }
        rc = llava_set_param_int(p->base.h, key, v);
    } else {
        if (lua_type(L, vidx) != LUA_TNUMBER)
            return luaL_argerror(L, vidx, "number expected for a float parameter");
        rc = llava_set_param_float(p->base.h, key, (double)lua_tonumber(L, vidx));
    }
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(p->base.h));
    return 0;
}

/* Fill params from the table at tidx. Returns 0 or 3 (nil, msg, code pushed). */
static int params_set_table(lua_State *L, lparams *p, int tidx)
{
    tidx = lua_absindex(L, tidx);
    lua_pushnil(L);
    while (lua_next(L, tidx)) {
        int r = params_set_value(L, p, check_key(L, -2), lua_gettop(L));
        if (r)
            return r;
        lua_pop(L, 1);
    }
    return 0;
}

static lparams *new_params(lua_State *L)
{
    lparams *p = (lparams *)new_handle(L, K_PARAMS);
    p->base.cb[0] = &p->cb;
    /* register cbctx -> userdata for the callback thunks */
    lua_getfield(L, LUA_REGISTRYINDEX, CBMAP_KEY);
    lua_pushlightuserdata(L, &p->cb);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return p;
}

/* llava.params([table]) -> params | nil, msg, code */
static int l_params(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    lparams *p = new_params(L);
    p->base.h = llava_new_params();
    if (!p->base.h)
        return push_fail(L, LLAVA_E_NOMEM, "llava_new_params: out of memory");
    int pidx = lua_gettop(L);
    if (lua_istable(L, 1)) {
        int r = params_set_table(L, p, 1);
        if (r)
            return r;
    }
    lua_settop(L, pidx);
    return 1;
}

/* The optional params argument at idx: a params userdata, a table (turned
 * into a new params userdata that replaces it on the stack) or nil. */
static lparams *opt_params(lua_State *L, int idx, int *fail)
{
    *fail = 0;
    if (lua_isnoneornil(L, idx))
        return NULL;
    if (lua_istable(L, idx)) {
        idx = lua_absindex(L, idx);
        lparams *p = new_params(L);
        p->base.h = llava_new_params();
        if (!p->base.h) {
            *fail = push_fail(L, LLAVA_E_NOMEM, "out of memory");
            return NULL;
        }
        int r = params_set_table(L, p, idx);
        if (r) {
            *fail = r;
            return NULL;
        }
        lua_replace(L, idx);
        return p;
    }
    return check_params(L, idx);
}

static int p_set(lua_State *L)
{
    lparams *p = check_params(L, 1);
    int key = check_key(L, 2);
    luaL_checkany(L, 3);
    int r = params_set_value(L, p, key, 3);
    if (r)
        return r;
    lua_settop(L, 1);
    return 1;
}

static int p_get(lua_State *L)
{
    lparams *p = check_params(L, 1);
    int key = check_key(L, 2), type = 0;
    int rc = llava_get_param_info(key, &type, NULL, NULL, NULL);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, "unknown parameter key");
    if (type == LLAVA_PARAM_TYPE_INT) {
        int64_t v = 0;
        rc = llava_get_param_int(p->base.h, key, &v);
        if (rc != LLAVA_OK)
            return push_fail(L, rc, llava_errmsg(p->base.h));
        lua_pushinteger(L, (lua_Integer)v);
    } else {
        double v = 0;
        rc = llava_get_param_float(p->base.h, key, &v);
        if (rc != LLAVA_OK)
            return push_fail(L, rc, llava_errmsg(p->base.h));
        lua_pushnumber(L, v);
    }
    return 1;
}

/* llava.param_info(key) -> "int"|"float", min, max, default | nil, msg, code */
static int l_param_info(lua_State *L)
{
    int key = check_key(L, lua_isuserdata(L, 1) ? 2 : 1);
    int type = 0;
    double lo = 0, hi = 0, def = 0;
    int rc = llava_get_param_info(key, &type, &lo, &hi, &def);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, "unknown parameter key");
    lua_pushstring(L, type == LLAVA_PARAM_TYPE_INT ? "int" : "float");
    lua_pushnumber(L, lo);
    lua_pushnumber(L, hi);
    if (type == LLAVA_PARAM_TYPE_INT)
        lua_pushinteger(L, (lua_Integer)def);
    else
        lua_pushnumber(L, def);
    return 4;
}

static int p_dup(lua_State *L)
{
    lparams *src = check_params(L, 1);
    lparams *p = new_params(L);
    int pidx = lua_gettop(L);
    p->base.h = llava_dup_params(src->base.h);
    if (!p->base.h)
        return push_fail(L, LLAVA_E_NOMEM, "llava_dup_params: out of memory");
    /* the same Lua callbacks, called through the copy's own cbctx */
    push_uservalue(L, 1);
    push_uservalue(L, pidx);
    lua_getfield(L, -2, "progress");
    llava_set_progress_callback(p->base.h, lua_isnil(L, -1) ? NULL : progress_thunk, &p->cb);
    lua_setfield(L, -2, "progress");
    lua_getfield(L, -2, "abort");
    llava_set_abort_callback(p->base.h, lua_isnil(L, -1) ? NULL : abort_thunk, &p->cb);
    lua_setfield(L, -2, "abort");
    lua_getfield(L, -2, "log");
    llava_set_log_callback(p->base.h, lua_isnil(L, -1) ? NULL : log_thunk, &p->cb);
    lua_setfield(L, -2, "log");
    lua_settop(L, pidx);
    return 1;
}

static int set_callback(lua_State *L, const char *field)
{
    lparams *p = check_params(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    push_uservalue(L, 1);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, field);
    lua_pop(L, 1);
    int on = !lua_isnil(L, 2), rc;
    if (field[0] == 'p')
        rc = llava_set_progress_callback(p->base.h, on ? progress_thunk : NULL, on ? &p->cb : NULL);
    else if (field[0] == 'a')
        rc = llava_set_abort_callback(p->base.h, on ? abort_thunk : NULL, on ? &p->cb : NULL);
    else
        rc = llava_set_log_callback(p->base.h, on ? log_thunk : NULL, on ? &p->cb : NULL);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(p->base.h));
    lua_settop(L, 1);
    return 1;
}

static int p_set_progress(lua_State *L) { return set_callback(L, "progress"); }
static int p_set_abort(lua_State *L)    { return set_callback(L, "abort"); }
static int p_set_log(lua_State *L)      { return set_callback(L, "log"); }

/* ---------------------------------------------------------------------- */
/* Common methods                                                          */

/* The handle at idx, of any kind, or NULL if it is not one of ours. */
static lhandle *to_handle(lua_State *L, int idx)
{
    for (int k = 0; k < K_COUNT; k++) {
        lhandle *u = luaL_testudata(L, idx, kind_mt[k]);
        if (u)
            return u;
    }
    return NULL;
}

static int h_close(lua_State *L)
{
    if (to_handle(L, 1))
        close_handle(L, 1);
    return 0;
}

static int h_gc(lua_State *L)
{
    return h_close(L);
}

static int h_errmsg(lua_State *L)
{
    lhandle *u = to_handle(L, 1);
    luaL_argcheck(L, u != NULL, 1, "handle expected");
    lua_pushstring(L, llava_errmsg(u->h));
    return 1;
}

static int h_is_closed(lua_State *L)
{
    lhandle *u = to_handle(L, 1);
    luaL_argcheck(L, u != NULL, 1, "handle expected");
    lua_pushboolean(L, u->h == NULL);
    return 1;
}

static int h_tostring(lua_State *L)
{
    lhandle *u = lua_touserdata(L, 1);
    if (u->h)
        lua_pushfstring(L, "%s (%p)", kind_mt[u->kind], u->h);
    else
        lua_pushfstring(L, "%s (closed)", kind_mt[u->kind]);
    return 1;
}

/* Bookkeeping of a constructor made with optional params at pidx: the new
 * userdata at uidx keeps them (their callbacks) alive. */
static void keep_params(lua_State *L, int uidx, lhandle *u, lparams *p, int pidx)
{
    if (!p)
        return;
    anchor(L, uidx, "params", pidx);
    u->cb[0] = &p->cb;
}

/* A scratch buffer owned by Lua (freed by the GC even if we raise). */
static void *scratch(lua_State *L, size_t size)
{
    return lua_newuserdata(L, size ? size : 1);
}

/* The path and memory loaders of each loadable kind, called with their own
 * pointer types. */
static int call_loader(int kind, int from_mem, const char *arg, size_t size, const llava_params *p,
                       void **out, char *err, size_t err_size)
{
    int rc = LLAVA_E_INTERNAL;
    switch (kind) {
    case K_LM: {
        llava_lm *h = NULL;
        rc = from_mem ? llava_load_lm_from_memory(arg, size, p, &h, err, err_size)
                      : llava_load_lm(arg, p, &h, err, err_size);
        *out = h;
        break; }
    case K_VISION: {
        llava_vision *h = NULL;
        rc = from_mem ? llava_load_vision_from_memory(arg, size, p, &h, err, err_size)
                      : llava_load_vision(arg, p, &h, err, err_size);
        *out = h;
        break; }
    case K_PROJECTOR: {
        llava_projector *h = NULL;
        rc = from_mem ? llava_load_projector_from_memory(arg, size, p, &h, err, err_size)
                      : llava_load_projector(arg, p, &h, err, err_size);
        *out = h;
        break; }
    case K_IMAGE: {
        llava_image *h = NULL;
        rc = from_mem ? llava_new_image_from_bytes(arg, size, p, &h, err, err_size)
                      : llava_load_image(arg, p, &h, err, err_size);
        *out = h;
        break; }
    }
    return rc;
}

/* load_X(path [, params]) and load_X_from_memory(string [, params]) */
static int load_common(lua_State *L, int kind, int from_mem)
{
    size_t size = 0;
    const char *arg = luaL_checklstring(L, 1, &size);
    int fail;
    lparams *p = opt_params(L, 2, &fail);
    if (fail)
        return fail;
    lhandle *u = new_handle(L, kind);
    int uidx = lua_gettop(L);
    keep_params(L, uidx, u, p, 2);
    if (from_mem)
        anchor(L, uidx, "bytes", 1); /* with USE_MMAP=1 the bytes are used in place */
    char err[LLAVA_ERRBUF_SIZE] = "", cberr[256];
    cbscope s;
    cb_enter(&s, L, u);
    int rc = call_loader(kind, from_mem, arg, size, p ? p->base.h : NULL, &u->h, err, sizeof err);
    if (cb_leave(&s, cberr, sizeof cberr) && rc != LLAVA_OK)
        return push_fail(L, rc, cberr);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    lua_settop(L, uidx);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* LM and tokenizer                                                        */

static int l_load_lm(lua_State *L)
{ return load_common(L, K_LM, 0); }
static int l_load_lm_from_memory(lua_State *L)
{ return load_common(L, K_LM, 1); }

static int lm_n_vocab(lua_State *L) { lua_pushinteger(L, llava_lm_n_vocab(CHECK(L, 1, K_LM, llava_lm))); return 1; }
static int lm_n_embd(lua_State *L) { lua_pushinteger(L, llava_lm_n_embd(CHECK(L, 1, K_LM, llava_lm))); return 1; }
static int lm_n_ctx_train(lua_State *L) { lua_pushinteger(L, llava_lm_n_ctx_train(CHECK(L, 1, K_LM, llava_lm))); return 1; }
static int lm_bos(lua_State *L) { lua_pushinteger(L, llava_lm_token_bos(CHECK(L, 1, K_LM, llava_lm))); return 1; }
static int lm_eos(lua_State *L) { lua_pushinteger(L, llava_lm_token_eos(CHECK(L, 1, K_LM, llava_lm))); return 1; }

static int lm_meta(lua_State *L)
{
    llava_lm *lm = CHECK(L, 1, K_LM, llava_lm);
    const char *key = luaL_checkstring(L, 2);
    size_t len = 0, cap = 256;
    char *buf = scratch(L, cap);
    int rc = llava_lm_meta_str(lm, key, buf, cap, &len);
    if (rc == LLAVA_E_BUFFER_TOO_SMALL) {
        cap = len + 1;
        buf = scratch(L, cap);
        rc = llava_lm_meta_str(lm, key, buf, cap, &len);
    }
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(lm));
    lua_pushlstring(L, buf, len);
    return 1;
}

/* lm:tokenize(text [, add_bos = true [, parse_special = false]]) -> { ids } */
static int lm_tokenize(lua_State *L)
{
    llava_lm *lm = CHECK(L, 1, K_LM, llava_lm);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    unsigned flags = (lua_isnoneornil(L, 3) || lua_toboolean(L, 3)) ? LLAVA_TOKENIZE_ADD_BOS : 0;
    if (lua_toboolean(L, 4))
        flags |= LLAVA_TOKENIZE_PARSE_SPECIAL;
    size_t cap = len + 2, n = 0;
    int32_t *ids = scratch(L, cap * sizeof *ids);
    int rc = llava_tokenize(lm, text, len, flags, ids, cap, &n);
    if (rc == LLAVA_E_BUFFER_TOO_SMALL) {
        cap = n;
        ids = scratch(L, cap * sizeof *ids);
        rc = llava_tokenize(lm, text, len, flags, ids, cap, &n);
    }
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(lm));
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* Push the piece of a token; returns the status (nothing pushed on failure). */
static int push_piece(lua_State *L, llava_lm *lm, int32_t tok, unsigned flags)
{
    char small[64];
    size_t len = 0;
    int rc = llava_token_to_piece(lm, tok, flags, small, sizeof small, &len);
    if (rc == LLAVA_E_BUFFER_TOO_SMALL) {
        char *big = scratch(L, len + 1);
        rc = llava_token_to_piece(lm, tok, flags, big, len + 1, &len);
        if (rc == LLAVA_OK) {
            lua_pushlstring(L, big, len);
            lua_remove(L, -2);
        }
    } else if (rc == LLAVA_OK) {
        lua_pushlstring(L, small, len);
    }
    return rc;
}

static int lm_token_to_piece(lua_State *L)
{
    llava_lm *lm = CHECK(L, 1, K_LM, llava_lm);
    int32_t tok = (int32_t)luaL_checkinteger(L, 2);
    unsigned flags = lua_toboolean(L, 3) ? LLAVA_PIECE_SPECIAL : 0;
    int rc = push_piece(L, lm, tok, flags);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(lm));
    return 1;
}

/* lm:detokenize({ ids } [, special]) -> string */
static int lm_detokenize(lua_State *L)
{
    llava_lm *lm = CHECK(L, 1, K_LM, llava_lm);
    luaL_checktype(L, 2, LUA_TTABLE);
    unsigned flags = lua_toboolean(L, 3) ? LLAVA_PIECE_SPECIAL : 0;
    size_t n = lua_rawlen(L, 2);
    lua_settop(L, 3);
    lua_newtable(L); /* pieces, joined at the end (no luaL_Buffer: pieces push values) */
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, (int)i);
        int32_t tok = (int32_t)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
        int rc = push_piece(L, lm, tok, flags);
        if (rc != LLAVA_OK)
            return push_fail(L, rc, llava_errmsg(lm));
        lua_rawseti(L, 4, (int)i);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 4, (int)i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Sessions                                                                */

/* lm:new_session([params]) / llava.new_session(lm [, params]) */
static int l_new_session(lua_State *L)
{
    llava_lm *lm = CHECK(L, 1, K_LM, llava_lm);
    int fail;
    lparams *p = opt_params(L, 2, &fail);
    if (fail)
        return fail;
    lhandle *u = new_handle(L, K_SESSION);
    int uidx = lua_gettop(L);
    keep_params(L, uidx, u, p, 2);
    anchor(L, uidx, "lm", 1);
    u->cb[1] = ((lhandle *)lua_touserdata(L, 1))->cb[0];
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_new_session(lm, p ? p->base.h : NULL, (llava_session **)&u->h, err, sizeof err);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    add_child(L, 1, uidx);
    lua_settop(L, uidx);
    return 1;
}

/* Run a session/chat operation that may call callbacks; returns rc and, if
 * a Lua callback failed, its message in cberr. */
#define WITH_CALLBACKS(L, u, call, rc, cberr, failed) do { \
        cbscope s_; cb_enter(&s_, (L), (u)); (rc) = (call); \
        (failed) = cb_leave(&s_, (cberr), sizeof(cberr)); } while (0)

static int finish(lua_State *L, int rc, int cb_failed, const char *cberr, const void *h, int nret)
{
    if (rc != LLAVA_OK)
        return push_fail(L, rc, cb_failed ? cberr : llava_errmsg(h));
    if (nret == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    return nret;
}

static int s_set_params(lua_State *L)
{
    lhandle *u = check_handle(L, 1, K_SESSION);
    int fail;
    lparams *p = opt_params(L, 2, &fail);
    if (fail)
        return fail;
    int rc = llava_session_set_params(u->h, p ? p->base.h : NULL);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(u->h));
    if (p) {
        anchor(L, 1, "params", 2);
        u->cb[0] = &p->cb;
    } else {
        u->cb[0] = NULL;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* session:eval(id, ...) or session:eval({ ids }) */
static int s_eval(lua_State *L)
{
    lhandle *u = check_handle(L, 1, K_SESSION);
    int table = lua_istable(L, 2);
    size_t n = table ? lua_rawlen(L, 2) : (size_t)(lua_gettop(L) - 1);
    int32_t *ids = scratch(L, n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        if (table) {
            lua_rawgeti(L, 2, (int)i + 1);
            ids[i] = (int32_t)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        } else {
            ids[i] = (int32_t)luaL_checkinteger(L, (int)i + 2);
        }
    }
    char cberr[256];
    int rc, failed;
    WITH_CALLBACKS(L, u, llava_eval_tokens(u->h, ids, n), rc, cberr, failed);
    return finish(L, rc, failed, cberr, u->h, 0);
}

static int s_eval_embed(lua_State *L)
{
    lhandle *u = check_handle(L, 1, K_SESSION);
    llava_embed *e = CHECK(L, 2, K_EMBED, llava_embed);
    char cberr[256];
    int rc, failed;
    WITH_CALLBACKS(L, u, llava_eval_embed(u->h, e), rc, cberr, failed);
    return finish(L, rc, failed, cberr, u->h, 0);
}

/* session:logits() -> { n_vocab numbers } | nil before any eval */
static int s_logits(lua_State *L)
{
    llava_session *s = CHECK(L, 1, K_SESSION, llava_session);
    int32_t n = 0;
    const float *lg = llava_get_logits(s, &n);
    if (!lg) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_pushnumber(L, lg[i]); /* lg stays valid: no call on s in between */
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int s_sample(lua_State *L)
{
    llava_session *s = CHECK(L, 1, K_SESSION, llava_session);
    int32_t tok = -1;
    int rc = llava_sample(s, &tok);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(s));
    lua_pushinteger(L, tok);
    return 1;
}

static int s_position(lua_State *L) { lua_pushinteger(L, llava_session_position(CHECK(L, 1, K_SESSION, llava_session))); return 1; }
static int s_n_ctx(lua_State *L) { lua_pushinteger(L, llava_session_n_ctx(CHECK(L, 1, K_SESSION, llava_session))); return 1; }

static int s_rewind(lua_State *L)
{
    llava_session *s = CHECK(L, 1, K_SESSION, llava_session);
    int rc = llava_session_rewind(s, (int32_t)luaL_checkinteger(L, 2));
    return finish(L, rc, 0, NULL, s, 0);
}

/* session:save() -> string */
static int s_save(lua_State *L)
{
    llava_session *s = CHECK(L, 1, K_SESSION, llava_session);
    size_t size = 0;
    int rc = llava_session_save(s, NULL, 0, &size);
    if (rc != LLAVA_OK && rc != LLAVA_E_BUFFER_TOO_SMALL)
        return push_fail(L, rc, llava_errmsg(s));
    void *buf = scratch(L, size);
    rc = llava_session_save(s, buf, size, &size);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(s));
    lua_pushlstring(L, buf, size);
    return 1;
}

static int s_load(lua_State *L)
{
    llava_session *s = CHECK(L, 1, K_SESSION, llava_session);
    size_t size;
    const char *data = luaL_checklstring(L, 2, &size);
    return finish(L, llava_session_load(s, data, size), 0, NULL, s, 0);
}

/* ---------------------------------------------------------------------- */
/* Images                                                                  */

static int l_load_image(lua_State *L)
{ return load_common(L, K_IMAGE, 0); }
static int l_image_from_bytes(lua_State *L)
{ return load_common(L, K_IMAGE, 1); }

static int check_pixel_format(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return LLAVA_PIXEL_RGB;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        if (!strcmp(s, "rgb") || !strcmp(s, "RGB")) return LLAVA_PIXEL_RGB;
        if (!strcmp(s, "rgba") || !strcmp(s, "RGBA")) return LLAVA_PIXEL_RGBA;
        if (!strcmp(s, "bgra") || !strcmp(s, "BGRA")) return LLAVA_PIXEL_BGRA;
        return luaL_argerror(L, idx, "pixel format is 'rgb', 'rgba' or 'bgra'");
    }
    return (int)luaL_checkinteger(L, idx);
}

/* llava.image_from_pixels(bytes, width, height [, format = "rgb" [, stride
 * [, bottom_up [, params]]]]) */
static int l_image_from_pixels(lua_State *L)
{
    size_t size;
    const char *px = luaL_checklstring(L, 1, &size);
    lua_Integer w = luaL_checkinteger(L, 2), h = luaL_checkinteger(L, 3);
    int fmt = check_pixel_format(L, 4);
    luaL_argcheck(L, w > 0 && h > 0 && w <= INT32_MAX && h <= INT32_MAX, 2, "width and height must be positive");
    size_t bpp = fmt == LLAVA_PIXEL_RGB ? 3 : 4;
    lua_Integer stride = luaL_optinteger(L, 5, (lua_Integer)((size_t)w * bpp));
    luaL_argcheck(L, stride >= w * (lua_Integer)bpp, 5, "stride is smaller than a row");
    if ((size_t)stride * (size_t)(h - 1) + (size_t)w * bpp > size)
        return luaL_argerror(L, 1, "the string is too short for the pixels");
    unsigned flags = lua_toboolean(L, 6) ? LLAVA_PIXELS_BOTTOM_UP : 0;
    int fail;
    lparams *p = opt_params(L, 7, &fail);
    if (fail)
        return fail;
    lhandle *u = new_handle(L, K_IMAGE);
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_new_image_from_pixels(px, (int32_t)w, (int32_t)h, (size_t)stride, fmt, flags,
                                         p ? p->base.h : NULL, (llava_image **)&u->h, err, sizeof err);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    return 1;
}

static int im_width(lua_State *L) { lua_pushinteger(L, llava_image_width(CHECK(L, 1, K_IMAGE, llava_image))); return 1; }
static int im_height(lua_State *L) { lua_pushinteger(L, llava_image_height(CHECK(L, 1, K_IMAGE, llava_image))); return 1; }

static int im_size(lua_State *L)
{
    llava_image *im = CHECK(L, 1, K_IMAGE, llava_image);
    lua_pushinteger(L, llava_image_width(im));
    lua_pushinteger(L, llava_image_height(im));
    return 2;
}

/* image:rgb() -> string of width*height*3 bytes, top row first */
static int im_rgb(lua_State *L)
{
    llava_image *im = CHECK(L, 1, K_IMAGE, llava_image);
    const uint8_t *rgb = llava_image_rgb(im);
    size_t n = (size_t)llava_image_width(im) * (size_t)llava_image_height(im) * 3;
    lua_pushlstring(L, rgb ? (const char *)rgb : "", rgb ? n : 0);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Vision encoder, projector, embeddings                                   */

static int l_load_vision(lua_State *L)
{ return load_common(L, K_VISION, 0); }
static int l_load_vision_from_memory(lua_State *L)
{ return load_common(L, K_VISION, 1); }
static int l_load_projector(lua_State *L)
{ return load_common(L, K_PROJECTOR, 0); }
static int l_load_projector_from_memory(lua_State *L)
{ return load_common(L, K_PROJECTOR, 1); }

static int v_image_size(lua_State *L) { lua_pushinteger(L, llava_vision_image_size(CHECK(L, 1, K_VISION, llava_vision))); return 1; }
static int v_n_tokens(lua_State *L) { lua_pushinteger(L, llava_vision_n_tokens(CHECK(L, 1, K_VISION, llava_vision))); return 1; }
/* vision:n_tokens_for(projector, width, height) */
static int v_n_tokens_for(lua_State *L)
{
    llava_vision *v = CHECK(L, 1, K_VISION, llava_vision);
    llava_projector *p = CHECK(L, 2, K_PROJECTOR, llava_projector);
    lua_Integer w = luaL_checkinteger(L, 3), h = luaL_checkinteger(L, 4);
    luaL_argcheck(L, w >= 0 && w <= INT32_MAX, 3, "width out of range");
    luaL_argcheck(L, h >= 0 && h <= INT32_MAX, 4, "height out of range");
    lua_pushinteger(L, llava_vision_n_tokens_for(v, p, (int32_t)w, (int32_t)h));
    return 1;
}
static int pr_n_embd(lua_State *L) { lua_pushinteger(L, llava_projector_n_embd(CHECK(L, 1, K_PROJECTOR, llava_projector))); return 1; }

/* llava.encode_image(vision, projector, image [, params]) -> embed
 * (also vision:encode(projector, image [, params])) */
static int l_encode_image(lua_State *L)
{
    lhandle *vu = check_handle(L, 1, K_VISION), *pu = check_handle(L, 2, K_PROJECTOR);
    llava_vision *v = vu->h;
    llava_projector *pr = pu->h;
    llava_image *im = CHECK(L, 3, K_IMAGE, llava_image);
    int fail;
    lparams *p = opt_params(L, 4, &fail);
    if (fail)
        return fail;
    lhandle *u = new_handle(L, K_EMBED);
    char cberr[256];
    cbscope s;
    cb_enter(&s, L, vu);
    cb_add(&s, L, pu->cb[0]);
    cb_add(&s, L, p ? &p->cb : NULL);
    int rc = llava_encode_image(v, pr, im, p ? p->base.h : NULL, (llava_embed **)&u->h);
    int failed = cb_leave(&s, cberr, sizeof cberr);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, failed ? cberr : llava_errmsg(im));
    return 1;
}

/* llava.new_embed(floats, n_tokens, n_embd): floats is a table of numbers
 * or a string of little-endian float32 bytes. */
static int l_new_embed(lua_State *L)
{
    lua_Integer nt = luaL_checkinteger(L, 2), ne = luaL_checkinteger(L, 3);
    luaL_argcheck(L, nt > 0 && nt <= INT32_MAX, 2, "n_tokens must be positive");
    luaL_argcheck(L, ne > 0 && ne <= INT32_MAX, 3, "n_embd must be positive");
    if ((size_t)nt > SIZE_MAX / sizeof(float) / (size_t)ne)
        return luaL_argerror(L, 2, "too large");
    size_t n = (size_t)nt * (size_t)ne;
    float *buf = scratch(L, n * sizeof(float));
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        luaL_argcheck(L, len == n * sizeof(float), 1, "string length is not n_tokens * n_embd * 4");
        memcpy(buf, s, len);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        luaL_argcheck(L, lua_rawlen(L, 1) == n, 1, "table length is not n_tokens * n_embd");
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, 1, (int)i + 1);
            buf[i] = (float)luaL_checknumber(L, -1);
            lua_pop(L, 1);
        }
    }
    lhandle *u = new_handle(L, K_EMBED);
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_new_embed(buf, (int32_t)nt, (int32_t)ne, (llava_embed **)&u->h, err, sizeof err);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    return 1;
}

static int l_load_embed(lua_State *L)
{
    size_t size;
    const char *data = luaL_checklstring(L, 1, &size);
    lhandle *u = new_handle(L, K_EMBED);
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_embed_load(data, size, (llava_embed **)&u->h, err, sizeof err);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    return 1;
}

static int l_load_embed_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lhandle *u = new_handle(L, K_EMBED);
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_embed_load_file(path, (llava_embed **)&u->h, err, sizeof err);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    return 1;
}

static int e_n_tokens(lua_State *L) { lua_pushinteger(L, llava_embed_n_tokens(CHECK(L, 1, K_EMBED, llava_embed))); return 1; }
static int e_n_embd(lua_State *L) { lua_pushinteger(L, llava_embed_n_embd(CHECK(L, 1, K_EMBED, llava_embed))); return 1; }

/* embed:data() -> { floats } (token-major); embed:data(true) -> float32 bytes */
static int e_data(lua_State *L)
{
    llava_embed *e = CHECK(L, 1, K_EMBED, llava_embed);
    const float *d = llava_embed_data(e);
    size_t n = (size_t)llava_embed_n_tokens(e) * (size_t)llava_embed_n_embd(e);
    if (lua_toboolean(L, 2)) {
        lua_pushlstring(L, d ? (const char *)d : "", d ? n * sizeof(float) : 0);
        return 1;
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; d && i < n; i++) {
        lua_pushnumber(L, d[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* embed:save() -> string blob; embed:save(path) -> true */
static int e_save(lua_State *L)
{
    llava_embed *e = CHECK(L, 1, K_EMBED, llava_embed);
    if (!lua_isnoneornil(L, 2))
        return finish(L, llava_embed_save_file(e, luaL_checkstring(L, 2)), 0, NULL, e, 0);
    size_t size = 0;
    int rc = llava_embed_save(e, NULL, 0, &size);
    if (rc != LLAVA_OK && rc != LLAVA_E_BUFFER_TOO_SMALL)
        return push_fail(L, rc, llava_errmsg(e));
    void *buf = scratch(L, size);
    rc = llava_embed_save(e, buf, size, &size);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, llava_errmsg(e));
    lua_pushlstring(L, buf, size);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Chat                                                                    */

static int l_new_chat(lua_State *L)
{
    llava_lm *lm = CHECK(L, 1, K_LM, llava_lm);
    int fail;
    lparams *p = opt_params(L, 2, &fail);
    if (fail)
        return fail;
    lhandle *u = new_handle(L, K_CHAT);
    int uidx = lua_gettop(L);
    keep_params(L, uidx, u, p, 2);
    anchor(L, uidx, "lm", 1);
    u->cb[1] = ((lhandle *)lua_touserdata(L, 1))->cb[0];
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_new_chat(lm, p ? p->base.h : NULL, (llava_chat **)&u->h, err, sizeof err);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, err);
    add_child(L, 1, uidx);
    lua_settop(L, uidx);
    return 1;
}

static int c_set_system(lua_State *L)
{
    llava_chat *c = CHECK(L, 1, K_CHAT, llava_chat);
    const char *text = luaL_optstring(L, 2, NULL);
    return finish(L, llava_chat_set_system(c, text), 0, NULL, c, 0);
}

static int c_add_text(lua_State *L)
{
    llava_chat *c = CHECK(L, 1, K_CHAT, llava_chat);
    return finish(L, llava_chat_add_text(c, luaL_checkstring(L, 2)), 0, NULL, c, 0);
}

static int c_add_image(lua_State *L)
{
    lhandle *u = check_handle(L, 1, K_CHAT);
    llava_embed *e = CHECK(L, 2, K_EMBED, llava_embed);
    char cberr[256];
    int rc, failed;
    WITH_CALLBACKS(L, u, llava_chat_add_image(u->h, e), rc, cberr, failed);
    return finish(L, rc, failed, cberr, u->h, 0);
}

/* chat:step() -> token, piece, done | nil, msg, code. token is -1 when the
 * reply ended without a new token. */
static int c_step(lua_State *L)
{
    lhandle *u = check_handle(L, 1, K_CHAT);
    int32_t tok = -1;
    const char *piece = NULL;
    size_t len = 0;
    int done = 1;
    char cberr[256];
    int rc, failed;
    WITH_CALLBACKS(L, u, llava_chat_step(u->h, &tok, &piece, &len, &done), rc, cberr, failed);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, failed ? cberr : llava_errmsg(u->h));
    lua_pushinteger(L, tok);
    lua_pushlstring(L, piece ? piece : "", piece ? len : 0);
    lua_pushboolean(L, done);
    return 3;
}

/* for token, piece in chat:tokens() do ... end   (errors raise) */
static int c_tokens_iter(lua_State *L)
{
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    int n = c_step(L);
    if (n == 3 && lua_isnil(L, -3))
        return luaL_error(L, "llava chat: %s (status %d)", lua_tostring(L, -2), (int)lua_tointeger(L, -1));
    if (lua_toboolean(L, -1))
        return 0; /* done */
    lua_pop(L, 1);
    return 2;
}

static int c_tokens(lua_State *L)
{
    check_handle(L, 1, K_CHAT);
    lua_settop(L, 1);
    lua_pushcclosure(L, c_tokens_iter, 1);
    return 1;
}

/* chat:generate([fn]) -> reply text | nil, msg, code. fn(token, piece) is
 * called for every token (llava_chat_generate); a true result stops. */
typedef struct gen_args {
    int has_fn, n_parts;
    int32_t tok;
    const char *piece;
    size_t len;
    int stop;
} gen_args;

static int gen_protected(lua_State *L)
{
    gen_args *a = lua_touserdata(L, 1);
    /* registry[a] = { fn, parts } (this runs in its own call frame) */
    lua_pushlightuserdata(L, a);
    lua_rawget(L, LUA_REGISTRYINDEX);
    int ctx = lua_gettop(L);
    lua_rawgeti(L, ctx, 2);
    lua_pushlstring(L, a->piece, a->len);
    lua_rawseti(L, -2, ++a->n_parts);
    if (a->has_fn) {
        lua_rawgeti(L, ctx, 1);
        lua_pushinteger(L, a->tok);
        lua_pushlstring(L, a->piece, a->len);
        lua_call(L, 2, 1);
        a->stop = lua_toboolean(L, -1);
    }
    return 0;
}

typedef struct gen_ctx {
    lua_State *L;
    gen_args args;
    int failed;
    char msg[256];
} gen_ctx;

static int gen_thunk(int32_t token, const char *piece, size_t len, void *ud)
{
    gen_ctx *g = ud;
    if (g->failed)
        return 1;
    g->args.tok = token;
    g->args.piece = piece ? piece : "";
    g->args.len = piece ? len : 0;
    g->args.stop = 0;
    if (run_protected(g->L, gen_protected, &g->args, g->msg, sizeof g->msg) != 0) {
        g->failed = 1;
        return 1;
    }
    return g->args.stop;
}

static int c_generate(lua_State *L)
{
    lhandle *u = check_handle(L, 1, K_CHAT);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    gen_ctx g;
    memset(&g, 0, sizeof g);
    g.L = L;
    g.args.has_fn = !lua_isnil(L, 2);
    lua_createtable(L, 2, 0); /* 3: { fn, pieces }, reachable from the callback as registry[&g.args] */
    lua_pushvalue(L, 2);
    lua_rawseti(L, 3, 1);
    lua_newtable(L);
    lua_rawseti(L, 3, 2);
    lua_pushlightuserdata(L, &g.args);
    lua_pushvalue(L, 3);
    lua_rawset(L, LUA_REGISTRYINDEX);
    char cberr[256];
    int rc, failed;
    WITH_CALLBACKS(L, u, llava_chat_generate(u->h, gen_thunk, &g), rc, cberr, failed);
    lua_pushlightuserdata(L, &g.args);
    lua_pushnil(L);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, 3, 2);
    lua_replace(L, 3); /* 3: the pieces */
    if (g.failed)
        return push_fail(L, LLAVA_E_ABORTED, g.msg);
    if (rc != LLAVA_OK)
        return push_fail(L, rc, failed ? cberr : llava_errmsg(u->h));
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= g.args.n_parts; i++) {
        lua_rawgeti(L, 3, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* chat:session() -> the chat's own session (borrowed: closed with the chat) */
static int c_session(lua_State *L)
{
    lhandle *c = check_handle(L, 1, K_CHAT);
    push_uservalue(L, 1);
    lua_getfield(L, -1, "session");
    lhandle *s = lua_touserdata(L, -1);
    if (s && s->h)
        return 1;
    lua_pop(L, 1);
    lhandle *u = new_handle(L, K_SESSION);
    u->owned = 0;
    u->cb[0] = c->cb[0];
    u->cb[1] = c->cb[1];
    u->h = llava_chat_session(c->h);
    anchor(L, -1, "chat", 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "session");
    add_child(L, 1, -1);
    return 1;
}

static int c_template(lua_State *L)
{
    int t = llava_chat_template(CHECK(L, 1, K_CHAT, llava_chat));
    const char *name = t == LLAVA_TEMPLATE_LLAVA_1_5 ? "llava-1.5" : t == LLAVA_TEMPLATE_MISTRAL ? "mistral"
                     : t == LLAVA_TEMPLATE_CHATML ? "chatml" : "auto";
    lua_pushstring(L, name);
    lua_pushinteger(L, t);
    return 2;
}

/* ---------------------------------------------------------------------- */
/* Module                                                                  */

static int l_version(lua_State *L)
{
    lua_pushstring(L, llava_version_string());
    lua_pushinteger(L, llava_version_number());
    return 2;
}

static int l_strerror(lua_State *L)
{
    lua_pushstring(L, llava_strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

#define COMMON_METHODS \
    { "close", h_close }, { "errmsg", h_errmsg }, { "is_closed", h_is_closed }

static const luaL_Reg params_methods[] = {
    COMMON_METHODS, { "set", p_set }, { "get", p_get }, { "info", l_param_info }, { "dup", p_dup },
    { "set_progress_callback", p_set_progress }, { "set_abort_callback", p_set_abort },
    { "set_log_callback", p_set_log }, { NULL, NULL } };
static const luaL_Reg lm_methods[] = {
    COMMON_METHODS, { "n_vocab", lm_n_vocab }, { "n_embd", lm_n_embd }, { "n_ctx_train", lm_n_ctx_train },
    { "bos", lm_bos }, { "eos", lm_eos }, { "meta", lm_meta }, { "tokenize", lm_tokenize },
    { "token_to_piece", lm_token_to_piece }, { "detokenize", lm_detokenize },
    { "new_session", l_new_session }, { "new_chat", l_new_chat }, { NULL, NULL } };
static const luaL_Reg session_methods[] = {
    COMMON_METHODS, { "set_params", s_set_params }, { "eval", s_eval }, { "eval_embed", s_eval_embed },
    { "logits", s_logits }, { "sample", s_sample }, { "position", s_position }, { "n_ctx", s_n_ctx },
    { "rewind", s_rewind }, { "save", s_save }, { "load", s_load }, { NULL, NULL } };
static const luaL_Reg vision_methods[] = {
    COMMON_METHODS, { "image_size", v_image_size }, { "n_tokens", v_n_tokens }, { "n_tokens_for", v_n_tokens_for }, { "encode", l_encode_image },
    { NULL, NULL } };
static const luaL_Reg projector_methods[] = { COMMON_METHODS, { "n_embd", pr_n_embd }, { NULL, NULL } };
static const luaL_Reg image_methods[] = {
    COMMON_METHODS, { "width", im_width }, { "height", im_height }, { "size", im_size }, { "rgb", im_rgb },
    { NULL, NULL } };
static const luaL_Reg embed_methods[] = {
    COMMON_METHODS, { "n_tokens", e_n_tokens }, { "n_embd", e_n_embd }, { "data", e_data }, { "save", e_save },
    { NULL, NULL } };
static const luaL_Reg chat_methods[] = {
    COMMON_METHODS, { "set_system", c_set_system }, { "add_text", c_add_text }, { "add_image", c_add_image },
    { "step", c_step }, { "tokens", c_tokens }, { "generate", c_generate }, { "session", c_session },
    { "template", c_template }, { NULL, NULL } };

static const luaL_Reg *const kind_methods[K_COUNT] = {
    params_methods, lm_methods, session_methods, vision_methods,
    projector_methods, image_methods, embed_methods, chat_methods,
};

static const luaL_Reg module_functions[] = {
    { "version", l_version }, { "strerror", l_strerror }, { "params", l_params },
    { "param_info", l_param_info },
    { "load_lm", l_load_lm }, { "load_lm_from_memory", l_load_lm_from_memory },
    { "new_session", l_new_session }, { "new_chat", l_new_chat },
    { "load_image", l_load_image }, { "image_from_bytes", l_image_from_bytes },
    { "image_from_pixels", l_image_from_pixels },
    { "load_vision", l_load_vision }, { "load_vision_from_memory", l_load_vision_from_memory },
    { "load_projector", l_load_projector }, { "load_projector_from_memory", l_load_projector_from_memory },
    { "encode_image", l_encode_image }, { "new_embed", l_new_embed },
    { "load_embed", l_load_embed }, { "load_embed_file", l_load_embed_file },
    { NULL, NULL } };

static void set_int_field(lua_State *L, const char *name, int value)
{
    lua_pushinteger(L, value);
    lua_setfield(L, -2, name);
}

/* Lua 5.4 dlcloses C modules when the state closes, which would unload
 * libllava (and libgomp in an OpenMP build) while their idle worker threads
 * still run: a crash at exit (seen in about 1 of 3 runs of
 * examples/lua/npc_vision.lua with OpenMP). Pin this module (and so its
 * dependencies) for the life of the process. */
static void pin_module(void)
{
#if defined(__linux__) && defined(RTLD_NODELETE)
    Dl_info info;
    if (dladdr((void *)pin_module, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

LUALIB_API int luaopen_llava(lua_State *L);
LUALIB_API int luaopen_llava(lua_State *L)
{
    pin_module();

    /* weak-valued map for the callback thunks */
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, CBMAP_KEY);

    for (int k = 0; k < K_COUNT; k++) {
        luaL_newmetatable(L, kind_mt[k]);
        lua_newtable(L);
        luaL_setfuncs(L, kind_methods[k], 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, h_gc);
        lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
        lua_pushcfunction(L, h_gc);
        lua_setfield(L, -2, "__close");
#endif
        lua_pushcfunction(L, h_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushstring(L, kind_mt[k]);
        lua_setfield(L, -2, "__name");
        lua_pop(L, 1);
    }

    luaL_newlib(L, module_functions);
    lua_pushstring(L, LLAVA_VERSION_STRING);
    lua_setfield(L, -2, "_VERSION");

    lua_newtable(L);
    set_int_field(L, "OK", LLAVA_OK);
    set_int_field(L, "E_INVALID_ARG", LLAVA_E_INVALID_ARG);
    set_int_field(L, "E_NOMEM", LLAVA_E_NOMEM);
    set_int_field(L, "E_IO", LLAVA_E_IO);
    set_int_field(L, "E_FORMAT", LLAVA_E_FORMAT);
    set_int_field(L, "E_UNSUPPORTED", LLAVA_E_UNSUPPORTED);
    set_int_field(L, "E_IMAGE", LLAVA_E_IMAGE);
    set_int_field(L, "E_MISMATCH", LLAVA_E_MISMATCH);
    set_int_field(L, "E_CONTEXT_FULL", LLAVA_E_CONTEXT_FULL);
    set_int_field(L, "E_ABORTED", LLAVA_E_ABORTED);
    set_int_field(L, "E_BUFFER_TOO_SMALL", LLAVA_E_BUFFER_TOO_SMALL);
    set_int_field(L, "E_STATE", LLAVA_E_STATE);
    set_int_field(L, "E_INTERNAL", LLAVA_E_INTERNAL);
    lua_setfield(L, -2, "status");

    lua_newtable(L);
    for (size_t i = 0; i < sizeof param_names / sizeof param_names[0]; i++)
        set_int_field(L, param_names[i].name, param_names[i].key);
    lua_setfield(L, -2, "param");

    lua_newtable(L);
    for (size_t i = 0; i < sizeof template_names / sizeof template_names[0]; i++)
        set_int_field(L, template_names[i].name, template_names[i].value);
    lua_setfield(L, -2, "template");

    lua_newtable(L);
    set_int_field(L, "rgb", LLAVA_PIXEL_RGB);
    set_int_field(L, "rgba", LLAVA_PIXEL_RGBA);
    set_int_field(L, "bgra", LLAVA_PIXEL_BGRA);
    lua_setfield(L, -2, "pixel");
    return 1;
}
