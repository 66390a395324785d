/*
 * ngx_mesh trace: W3C trace context and spans for the sidecar's HTTP and gRPC requests.
 *
 * Each request a server traces joins the trace its traceparent header names, or starts one,
 * and gets a span id of its own. The request is sent on with a traceparent naming that span,
 * and, when the trace is sampled, recorded as a span in a shared-memory zone the agent takes
 * (reads and empties) over a loopback location, as it takes the request counters.
 *
 *   mesh_trace_zone   <name> <size>;          http main: a zone of span records
 *   mesh_trace_ratio  <0..1>;                 http, server, location: the share of new traces
 *                                             that are sampled (default 0); an incoming
 *                                             traceparent's sampled flag is always honoured
 *   mesh_trace_span   <zone> client|server <attributes> | off;
 *                                             http, server: trace each request and record it,
 *                                             when sampled, as a span of this kind with the
 *                                             attributes (a value with variables) evaluated in
 *                                             the log phase
 *   mesh_trace_dump   <zone>;                 location: print the zone; a POST also empties it
 *
 * Variables:
 *   $mesh_trace_id        32 lowercase hex digits: the incoming traceparent's, else a new one
 *   $mesh_span_id         16 hex digits: this request's span, new for each request
 *   $mesh_parent_span_id  16 hex digits: the incoming traceparent's parent-id; not found when
 *                         the trace starts here
 *   $mesh_trace_sampled   "1" or "0"
 *   $mesh_traceparent     "00-<trace id>-<span id>-<flags>": the header to send on
 *
 * A traceparent is used only when it is valid (https://www.w3.org/TR/trace-context/):
 * version 00 with exactly 55 characters, or a later version (not ff) whose first 55 match
 * version 00's form; lower-case hex; neither id all zeros; a single header. Anything else
 * starts a new trace, as the specification asks.
 *
 * The dump, per zone: a line "zone <name> spans <n> dropped <n> bytes <used>/<capacity>", then
 * one line per span:
 *
 *   <trace id> <span id> <parent id or -> <client|server> <start µs> <duration µs> <status>
 *   <method> <path> <attributes>
 *
 * on one line, where start is microseconds since the epoch, status the response status (0
 * when none was sent), path the request target before "?", with bytes outside printable ASCII
 * and spaces as %XX, cut at 512 bytes, and attributes the rest of the line (a line feed or
 * carriage return in them becomes a space; cut at 1024 bytes). A span that does not fit in
 * the zone is counted in "dropped" instead; nothing is logged per request.
 *
 * Ids come from a xoshiro256** generator per worker process, seeded from getrandom(2) in each
 * process at its first use: a trace or span id needs to be unique, not secret.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/random.h>


#define NGX_MESH_TRACE_MAX_PATH    512
#define NGX_MESH_TRACE_MAX_ATTRS   1024
#define NGX_MESH_TRACE_MAX_METHOD  32
#define NGX_MESH_TRACE_PPM         1000000
#define NGX_MESH_TRACE_PARENT_LEN  55


typedef enum {
    NGX_MESH_TRACE_CLIENT = 1,
    NGX_MESH_TRACE_SERVER
} ngx_mesh_trace_kind_e;


/* The zone: a byte buffer of span lines. */
typedef struct {
    size_t               used;
    size_t               capacity;
    uint64_t             spans;
    uint64_t             dropped;
    u_char              *buf;
} ngx_mesh_trace_sh_t;


typedef struct {
    ngx_mesh_trace_sh_t  *sh;
    ngx_slab_pool_t      *shpool;
} ngx_mesh_trace_zone_ctx_t;


typedef struct {
    ngx_uint_t                 ratio;    /* parts per million; NGX_CONF_UNSET_UINT: inherit */
    ngx_shm_zone_t            *zone;     /* NULL: off; NGX_CONF_UNSET_PTR: inherit */
    ngx_uint_t                 kind;
    ngx_http_complex_value_t  *attrs;
    ngx_shm_zone_t            *dump;
} ngx_http_mesh_trace_loc_conf_t;


/* One request's trace context. */
typedef struct {
    u_char       trace_id[32];
    u_char       span_id[16];
    u_char       parent_id[16];
    uint64_t     start_us;
    unsigned     has_parent:1;
    unsigned     sampled:1;
} ngx_http_mesh_trace_ctx_t;


typedef enum {
    NGX_MESH_TRACE_VAR_TRACE_ID = 0,
    NGX_MESH_TRACE_VAR_SPAN_ID,
    NGX_MESH_TRACE_VAR_PARENT_ID,
    NGX_MESH_TRACE_VAR_SAMPLED,
    NGX_MESH_TRACE_VAR_TRACEPARENT
} ngx_mesh_trace_var_e;


static ngx_int_t ngx_http_mesh_trace_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_mesh_trace_init(ngx_conf_t *cf);
static void *ngx_http_mesh_trace_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mesh_trace_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
static char *ngx_http_mesh_trace_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_trace_ratio(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_trace_span(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_trace_dump(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_mesh_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_command_t  ngx_http_mesh_trace_commands[] = {

    { ngx_string("mesh_trace_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_mesh_trace_zone,
      0,
      0,
      NULL },

    { ngx_string("mesh_trace_ratio"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mesh_trace_ratio,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_trace_span"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE13,
      ngx_http_mesh_trace_span,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_trace_dump"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mesh_trace_dump,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mesh_trace_module_ctx = {
    ngx_http_mesh_trace_add_variables,     /* preconfiguration */
    ngx_http_mesh_trace_init,              /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_mesh_trace_create_loc_conf,   /* create location configuration */
    ngx_http_mesh_trace_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_mesh_trace_module = {
    NGX_MODULE_V1,
    &ngx_http_mesh_trace_module_ctx,       /* module context */
    ngx_http_mesh_trace_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_mesh_trace_variables[] = {

    { ngx_string("mesh_trace_id"), NULL, ngx_http_mesh_trace_variable,
      NGX_MESH_TRACE_VAR_TRACE_ID, 0, 0 },

    { ngx_string("mesh_span_id"), NULL, ngx_http_mesh_trace_variable,
      NGX_MESH_TRACE_VAR_SPAN_ID, 0, 0 },

    { ngx_string("mesh_parent_span_id"), NULL, ngx_http_mesh_trace_variable,
      NGX_MESH_TRACE_VAR_PARENT_ID, 0, 0 },

    { ngx_string("mesh_trace_sampled"), NULL, ngx_http_mesh_trace_variable,
      NGX_MESH_TRACE_VAR_SAMPLED, 0, 0 },

    { ngx_string("mesh_traceparent"), NULL, ngx_http_mesh_trace_variable,
      NGX_MESH_TRACE_VAR_TRACEPARENT, 0, 0 },

      ngx_http_null_variable
};


/* ---- ids ---- */

static uint64_t    ngx_mesh_trace_rng[4];
static ngx_pid_t   ngx_mesh_trace_rng_pid = -1;


static uint64_t
ngx_mesh_trace_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


/* splitmix64: spreads a seed over the generator's state. */
static uint64_t
ngx_mesh_trace_splitmix(uint64_t *x)
{
    uint64_t  z;

    z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


/* Seeds this process's generator the first time it is used in it (workers fork unseeded). */
static void
ngx_mesh_trace_seed(void)
{
    uint64_t        seed[4], x;
    ngx_uint_t      i;
    struct timeval  tv;

    if (ngx_mesh_trace_rng_pid == ngx_pid) {
        return;
    }

    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t) sizeof(seed)) {
        /* no entropy yet (early boot): mix what differs between processes and times */
        ngx_gettimeofday(&tv);
        x = ((uint64_t) ngx_pid << 32) ^ (uint64_t) tv.tv_sec * 1000000 ^ (uint64_t) tv.tv_usec
            ^ (uint64_t) (uintptr_t) &tv;

        for (i = 0; i < 4; i++) {
            seed[i] = ngx_mesh_trace_splitmix(&x);
        }
    }

    for (i = 0; i < 4; i++) {
        ngx_mesh_trace_rng[i] = seed[i];
    }

    if ((ngx_mesh_trace_rng[0] | ngx_mesh_trace_rng[1] | ngx_mesh_trace_rng[2]
         | ngx_mesh_trace_rng[3]) == 0)
    {
        ngx_mesh_trace_rng[0] = 1;
    }

    ngx_mesh_trace_rng_pid = ngx_pid;
}


/* xoshiro256** */
static uint64_t
ngx_mesh_trace_next(void)
{
    uint64_t  *s = ngx_mesh_trace_rng;
    uint64_t   result, t;

    result = ngx_mesh_trace_rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ngx_mesh_trace_rotl(s[3], 45);

    return result;
}


/* Writes n random bytes as 2n hex digits, never all zeros. */
static void
ngx_mesh_trace_random_hex(u_char *dst, size_t n)
{
    u_char      bytes[16];
    uint64_t    a, b;
    ngx_uint_t  i;

    do {
        a = ngx_mesh_trace_next();
        b = ngx_mesh_trace_next();
    } while (a == 0 && (n <= 8 || b == 0));

    for (i = 0; i < 8; i++) {
        bytes[i] = (u_char) (a >> (56 - 8 * i));
        bytes[8 + i] = (u_char) (b >> (56 - 8 * i));
    }

    ngx_hex_dump(dst, bytes, n);
}


/* ---- traceparent ---- */

static ngx_uint_t
ngx_mesh_trace_lower_hex(u_char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_mesh_trace_all_zero(u_char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] != '0') {
            return 0;
        }
    }

    return 1;
}


/* The request's only traceparent header, or NULL when it has none or several. */
static ngx_table_elt_t *
ngx_http_mesh_trace_header(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    found = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("traceparent") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "traceparent",
                               sizeof("traceparent") - 1) == 0)
        {
            if (found != NULL) {
                return NULL;
            }

            found = &h[i];
        }
    }

    return found;
}


/* Fills ctx from a valid traceparent; NGX_DECLINED when there is none or it is not valid. */
static ngx_int_t
ngx_http_mesh_trace_parse(ngx_http_request_t *r, ngx_http_mesh_trace_ctx_t *ctx)
{
    u_char           *p, flags;
    ngx_int_t         n;
    ngx_table_elt_t  *h;

    h = ngx_http_mesh_trace_header(r);

    if (h == NULL || h->value.len < NGX_MESH_TRACE_PARENT_LEN) {
        return NGX_DECLINED;
    }

    p = h->value.data;

    if (!ngx_mesh_trace_lower_hex(p, 2) || (p[0] == 'f' && p[1] == 'f')
        || p[2] != '-' || p[35] != '-' || p[52] != '-'
        || !ngx_mesh_trace_lower_hex(p + 3, 32)
        || !ngx_mesh_trace_lower_hex(p + 36, 16)
        || !ngx_mesh_trace_lower_hex(p + 53, 2)
        || ngx_mesh_trace_all_zero(p + 3, 32)
        || ngx_mesh_trace_all_zero(p + 36, 16))
    {
        return NGX_DECLINED;
    }

    if (p[0] == '0' && p[1] == '0') {
        if (h->value.len != NGX_MESH_TRACE_PARENT_LEN) {
            return NGX_DECLINED;
        }

    } else if (h->value.len > NGX_MESH_TRACE_PARENT_LEN
               && p[NGX_MESH_TRACE_PARENT_LEN] != '-')
    {
        return NGX_DECLINED;
    }

    n = ngx_hextoi(p + 53, 2);
    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    flags = (u_char) n;

    ngx_memcpy(ctx->trace_id, p + 3, 32);
    ngx_memcpy(ctx->parent_id, p + 36, 16);
    ctx->has_parent = 1;
    ctx->sampled = flags & 1;

    return NGX_OK;
}


/* ---- the request's context ---- */

static void
ngx_http_mesh_trace_cleanup(void *data)
{
    (void) data;
}


/*
 * The request's trace context, created at the first use. An internal redirect (error_page, a
 * named location) empties the request's module contexts; the context also lives in a cleanup
 * of the request's pool, where it is found again, so a request keeps one span id throughout.
 */
static ngx_http_mesh_trace_ctx_t *
ngx_http_mesh_trace_get_ctx(ngx_http_request_t *r, ngx_uint_t precise_start)
{
    struct timeval                   tv;
    ngx_pool_cleanup_t              *cln;
    ngx_http_mesh_trace_ctx_t       *ctx;
    ngx_http_mesh_trace_loc_conf_t  *mlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mesh_trace_module);
    if (ctx != NULL) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln != NULL; cln = cln->next) {
        if (cln->handler == ngx_http_mesh_trace_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_mesh_trace_module);
            return ctx;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_mesh_trace_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_mesh_trace_ctx_t));
    cln->handler = ngx_http_mesh_trace_cleanup;

    if (precise_start) {
        ngx_gettimeofday(&tv);
        ctx->start_us = (uint64_t) tv.tv_sec * 1000000 + (uint64_t) tv.tv_usec;

    } else {
        ctx->start_us = (uint64_t) r->start_sec * 1000000 + (uint64_t) r->start_msec * 1000;
    }

    ngx_mesh_trace_seed();

    if (ngx_http_mesh_trace_parse(r, ctx) != NGX_OK) {
        mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_trace_module);

        ngx_mesh_trace_random_hex(ctx->trace_id, 16);
        ctx->has_parent = 0;
        ctx->sampled = mlcf->ratio >= NGX_MESH_TRACE_PPM
                       || (mlcf->ratio > 0
                           && ngx_mesh_trace_next() % NGX_MESH_TRACE_PPM < mlcf->ratio);
    }

    ngx_mesh_trace_random_hex(ctx->span_id, 8);

    ngx_http_set_ctx(r, ctx, ngx_http_mesh_trace_module);

    return ctx;
}


static ngx_int_t
ngx_http_mesh_trace_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                     *p;
    ngx_http_mesh_trace_ctx_t  *ctx;

    ctx = ngx_http_mesh_trace_get_ctx(r, 0);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    switch (data) {

    case NGX_MESH_TRACE_VAR_TRACE_ID:
        v->data = ctx->trace_id;
        v->len = 32;
        break;

    case NGX_MESH_TRACE_VAR_SPAN_ID:
        v->data = ctx->span_id;
        v->len = 16;
        break;

    case NGX_MESH_TRACE_VAR_PARENT_ID:
        if (!ctx->has_parent) {
            v->not_found = 1;
            v->len = 0;
            v->data = NULL;
            break;
        }

        v->data = ctx->parent_id;
        v->len = 16;
        break;

    case NGX_MESH_TRACE_VAR_SAMPLED:
        v->data = (u_char *) (ctx->sampled ? "1" : "0");
        v->len = 1;
        break;

    default: /* NGX_MESH_TRACE_VAR_TRACEPARENT */
        p = ngx_pnalloc(r->pool, NGX_MESH_TRACE_PARENT_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_sprintf(p, "00-%*s-%*s-%s", (size_t) 32, ctx->trace_id, (size_t) 16,
                             ctx->span_id, ctx->sampled ? "01" : "00") - p;
        break;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mesh_trace_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_mesh_trace_variables; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* ---- the zone ---- */

static ngx_uint_t  ngx_http_mesh_trace_tag;


static ngx_int_t
ngx_http_mesh_trace_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                      capacity;
    ngx_mesh_trace_zone_ctx_t  *octx = data;
    ngx_mesh_trace_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx != NULL) {
        /* a reload with the same name and size: keep the spans not taken yet */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_mesh_trace_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    /* the largest buffer the slab allocator gives; at least a quarter of the zone */
    for (capacity = shm_zone->shm.size - 2 * ngx_pagesize;
         capacity >= shm_zone->shm.size / 4;
         capacity -= ngx_pagesize)
    {
        ctx->sh->buf = ngx_slab_alloc(ctx->shpool, capacity);

        if (ctx->sh->buf != NULL) {
            ctx->sh->capacity = capacity;
            break;
        }
    }

    if (ctx->sh->buf == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static char *
ngx_http_mesh_trace_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                     size;
    ngx_str_t                  *value;
    ngx_shm_zone_t             *shm_zone;
    ngx_mesh_trace_zone_ctx_t  *ctx;

    (void) cmd;
    (void) conf;

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mesh_trace_zone size \"%V\": at least %uz bytes",
                           &value[2], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_mesh_trace_zone_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &value[1], size, &ngx_http_mesh_trace_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate mesh_trace_zone \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_mesh_trace_init_zone;
    shm_zone->data = ctx;

    return NGX_CONF_OK;
}


/* ---- configuration ---- */

static void *
ngx_http_mesh_trace_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mesh_trace_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mesh_trace_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->ratio = NGX_CONF_UNSET_UINT;
    conf->zone = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_mesh_trace_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mesh_trace_loc_conf_t  *prev = parent;
    ngx_http_mesh_trace_loc_conf_t  *conf = child;

    (void) cf;

    ngx_conf_merge_uint_value(conf->ratio, prev->ratio, 0);

    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = (prev->zone == NGX_CONF_UNSET_PTR) ? NULL : prev->zone;
        conf->kind = prev->kind;
        conf->attrs = prev->attrs;
    }

    return NGX_CONF_OK;
}


/* "0", "1", "0.25", ".5", "1.0": a share from 0 to 1 with up to six decimals, as ppm. */
static char *
ngx_http_mesh_trace_ratio(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_trace_loc_conf_t  *mlcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value;
    ngx_uint_t   whole, fraction, scale, digits;

    (void) cmd;

    if (mlcf->ratio != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    p = value[1].data;
    last = p + value[1].len;
    whole = 0;
    fraction = 0;
    digits = 0;
    scale = NGX_MESH_TRACE_PPM;

    if (p < last && (*p == '0' || *p == '1')) {
        whole = *p++ - '0';
        digits++;
    }

    if (p < last && *p == '.') {
        for (p++; p < last && *p >= '0' && *p <= '9' && scale > 1; p++) {
            scale /= 10;
            fraction += (*p - '0') * scale;
            digits++;
        }
    }

    if (p != last || digits == 0 || whole * NGX_MESH_TRACE_PPM + fraction > NGX_MESH_TRACE_PPM)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mesh_trace_ratio \"%V\": expected a number from 0 to 1 "
                           "with at most 6 decimals", &value[1]);
        return NGX_CONF_ERROR;
    }

    mlcf->ratio = whole * NGX_MESH_TRACE_PPM + fraction;

    return NGX_CONF_OK;
}


static char *
ngx_http_mesh_trace_span(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_trace_loc_conf_t  *mlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    (void) cmd;

    if (mlcf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "off") != 0) {
            return "needs a zone, a kind and attributes, or \"off\"";
        }

        mlcf->zone = NULL;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[2].data, "client") == 0) {
        mlcf->kind = NGX_MESH_TRACE_CLIENT;

    } else if (ngx_strcmp(value[2].data, "server") == 0) {
        mlcf->kind = NGX_MESH_TRACE_SERVER;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid span kind \"%V\": expected client or server", &value[2]);
        return NGX_CONF_ERROR;
    }

    mlcf->zone = ngx_shared_memory_add(cf, &value[1], 0, &ngx_http_mesh_trace_tag);
    if (mlcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mlcf->attrs = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (mlcf->attrs == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[3];
    ccv.complex_value = mlcf->attrs;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ---- recording ---- */

/* Copies the request target before "?", escaping spaces, controls and non-ASCII as %XX. */
static u_char *
ngx_http_mesh_trace_copy_path(u_char *dst, ngx_http_request_t *r)
{
    static u_char  hex[] = "0123456789ABCDEF";

    u_char  *src, *end, *limit;

    if (r->unparsed_uri.len == 0) {
        *dst++ = '-';
        return dst;
    }

    src = r->unparsed_uri.data;
    end = src + r->unparsed_uri.len;
    limit = dst + NGX_MESH_TRACE_MAX_PATH;

    for ( /* void */ ; src < end && *src != '?' && dst + 3 <= limit; src++) {

        if (*src <= 0x20 || *src >= 0x7f || *src == '%') {
            /* "%" too, so that the agent's decoding gives back the exact bytes */
            *dst++ = '%';
            *dst++ = hex[*src >> 4];
            *dst++ = hex[*src & 0xf];

        } else {
            *dst++ = *src;
        }
    }

    return dst;
}


/* Post-read: a traced server's requests start their span as early as nginx sees them. */
static ngx_int_t
ngx_http_mesh_trace_start_handler(ngx_http_request_t *r)
{
    ngx_http_mesh_trace_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_trace_module);

    if (mlcf->zone != NULL && r == r->main) {
        (void) ngx_http_mesh_trace_get_ctx(r, 1);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_mesh_trace_log_handler(ngx_http_request_t *r)
{
    u_char                          *line, *p;
    size_t                           len, method_len;
    uint64_t                         now_us, duration;
    ngx_str_t                        attrs;
    ngx_uint_t                       i;
    struct timeval                   tv;
    ngx_mesh_trace_sh_t             *sh;
    ngx_mesh_trace_zone_ctx_t       *zctx;
    ngx_http_mesh_trace_ctx_t       *ctx;
    ngx_http_mesh_trace_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_trace_module);

    if (mlcf->zone == NULL || mlcf->zone->data == NULL || r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_mesh_trace_get_ctx(r, 0);
    if (ctx == NULL || !ctx->sampled) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, mlcf->attrs, &attrs) != NGX_OK) {
        return NGX_OK;
    }

    if (attrs.len > NGX_MESH_TRACE_MAX_ATTRS) {
        attrs.len = NGX_MESH_TRACE_MAX_ATTRS;
    }

    method_len = ngx_min(r->method_name.len, NGX_MESH_TRACE_MAX_METHOD);

    len = 32 + 1 + 16 + 1 + 16 + 1 + 6 + 1 + NGX_INT64_LEN + 1 + NGX_INT64_LEN + 1
          + NGX_INT_T_LEN + 1 + method_len + 2 + NGX_MESH_TRACE_MAX_PATH + 1 + attrs.len + 1;

    line = ngx_pnalloc(r->pool, len);
    if (line == NULL) {
        return NGX_OK;
    }

    ngx_gettimeofday(&tv);
    now_us = (uint64_t) tv.tv_sec * 1000000 + (uint64_t) tv.tv_usec;
    duration = now_us > ctx->start_us ? now_us - ctx->start_us : 0;

    p = ngx_sprintf(line, "%*s %*s ", (size_t) 32, ctx->trace_id, (size_t) 16, ctx->span_id);

    if (ctx->has_parent) {
        p = ngx_cpymem(p, ctx->parent_id, 16);

    } else {
        *p++ = '-';
    }

    p = ngx_sprintf(p, " %s %uL %uL %ui ",
                    mlcf->kind == NGX_MESH_TRACE_CLIENT ? "client" : "server",
                    ctx->start_us, duration, r->headers_out.status);

    if (method_len == 0) {
        *p++ = '-';

    } else {
        for (i = 0; i < method_len; i++) {
            *p++ = (r->method_name.data[i] <= 0x20 || r->method_name.data[i] >= 0x7f)
                   ? '_' : r->method_name.data[i];
        }
    }

    *p++ = ' ';
    p = ngx_http_mesh_trace_copy_path(p, r);
    *p++ = ' ';

    for (i = 0; i < attrs.len; i++) {
        *p++ = (attrs.data[i] == LF || attrs.data[i] == CR) ? ' ' : attrs.data[i];
    }

    *p++ = LF;
    len = p - line;

    zctx = mlcf->zone->data;
    sh = zctx->sh;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    if (sh->capacity - sh->used < len) {
        sh->dropped++;

    } else {
        ngx_memcpy(sh->buf + sh->used, line, len);
        sh->used += len;
        sh->spans++;
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return NGX_OK;
}


static ngx_int_t
ngx_http_mesh_trace_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mesh_trace_start_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mesh_trace_log_handler;

    return NGX_OK;
}


/* ---- the dump ---- */

static ngx_int_t
ngx_http_mesh_trace_dump_handler(ngx_http_request_t *r)
{
    u_char                          *text, *p;
    size_t                           size;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_uint_t                       take;
    ngx_chain_t                      out;
    ngx_mesh_trace_sh_t             *sh;
    ngx_mesh_trace_zone_ctx_t       *zctx;
    ngx_http_mesh_trace_loc_conf_t  *mlcf;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_trace_module);
    zctx = mlcf->dump->data;

    if (zctx == NULL || zctx->sh == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    sh = zctx->sh;
    take = (r->method == NGX_HTTP_POST);

    ngx_shmtx_lock(&zctx->shpool->mutex);

    size = 128 + mlcf->dump->shm.name.len + sh->used;
    text = ngx_pnalloc(r->pool, size);

    if (text == NULL) {
        ngx_shmtx_unlock(&zctx->shpool->mutex);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(text, "zone %V spans %uL dropped %uL bytes %uz/%uz\n",
                    &mlcf->dump->shm.name, sh->spans, sh->dropped, sh->used, sh->capacity);
    p = ngx_cpymem(p, sh->buf, sh->used);

    if (take) {
        sh->used = 0;
        sh->spans = 0;
        sh->dropped = 0;
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = text;
    b->last = p;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = p - text;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->header_only = (r->method == NGX_HTTP_HEAD);

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static char *
ngx_http_mesh_trace_dump(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_trace_loc_conf_t  *mlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    (void) cmd;

    if (mlcf->dump != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mlcf->dump = ngx_shared_memory_add(cf, &value[1], 0, &ngx_http_mesh_trace_tag);
    if (mlcf->dump == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mesh_trace_dump_handler;

    return NGX_CONF_OK;
}
