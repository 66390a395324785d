/*
 * ngx_mesh stats: per-series request counters the sidecar's agent takes from nginx.
 *
 * The sidecar's metrics count every HTTP request and TCP connection by a key (direction,
 * status, peer, service). Sending one access-log line per request to the agent costs a
 * formatted record and a system call per request, in nginx, plus a read and a parse in the
 * agent. Here nginx adds each request to its series in shared memory instead, and the agent
 * takes the series (reads and empties them) once a second over a loopback HTTP location.
 *
 *   mesh_stats_zone  <name> <size>;           http or stream main: a zone of series
 *   mesh_stats       <zone> <key> [if=<v>];   http server/location, stream server: count
 *                                             each request (session) under the value of key,
 *                                             unless v is empty or "0"; "off" counts none
 *   mesh_stats_dump  <zone> ...;              http location: print the zones' series; a
 *                                             POST also empties them (the agent's "take")
 *
 * A series holds a count, the sum of durations in milliseconds, bytes sent to and received
 * from the client (stream only) and a duration histogram with the agent's bucket bounds. A
 * request whose new series does not fit in the zone (or whose key is longer than
 * NGX_MESH_STATS_MAX_KEY) is counted in the zone's "lost" counter instead; nothing is logged
 * per request. Zones keep their series across reloads when their name and size stay the same.
 *
 * Output of mesh_stats_dump, one line per zone and then one per series of it:
 *
 *   zone <name> series <n> lost <n> buckets <b1>,...,<b14>
 *   <count> <sum_ms> <sent> <received> <c1>,...,<c15> <key>
 *
 * where c1..c14 count durations up to each bound b (ms) and c15 the longer ones (not
 * cumulative). The key is the rest of the line: a line feed or carriage return in a key is
 * counted as a space.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_stream.h>


/* The agent's histogram bounds (SIDECAR_DURATION_BUCKETS_MS), in milliseconds. */
static const ngx_msec_int_t  ngx_mesh_stats_bounds[] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000
};

#define NGX_MESH_STATS_BOUNDS                                                 \
    (sizeof(ngx_mesh_stats_bounds) / sizeof(ngx_mesh_stats_bounds[0]))
#define NGX_MESH_STATS_BUCKETS   (NGX_MESH_STATS_BOUNDS + 1)
#define NGX_MESH_STATS_MAX_KEY   1024


typedef struct {
    ngx_str_node_t       sn;           /* first: the tree's node; sn.str points at key */
    uint64_t             count;
    uint64_t             sum_ms;
    uint64_t             sent;
    uint64_t             received;
    uint64_t             buckets[NGX_MESH_STATS_BUCKETS];
    u_char               key[1];
} ngx_mesh_stats_node_t;


typedef struct {
    ngx_rbtree_t         rbtree;
    ngx_rbtree_node_t    sentinel;
    ngx_uint_t           series;
    uint64_t             lost;
} ngx_mesh_stats_sh_t;


typedef struct {
    ngx_mesh_stats_sh_t  *sh;
    ngx_slab_pool_t      *shpool;
} ngx_mesh_stats_ctx_t;


/* Tag of every stats zone, http's and stream's alike, so one dump location reads both. */
static ngx_uint_t  ngx_mesh_stats_tag;


/* ---- shared core ---- */

static ngx_int_t
ngx_mesh_stats_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_mesh_stats_ctx_t  *octx = data;
    ngx_mesh_stats_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx != NULL) {
        /* a reload with the same name and size: keep the series */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_mesh_stats_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel, ngx_str_rbtree_insert_value);

    /* a full zone is what "lost" counts; it must not log once per request */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


/* Defines zone name (mesh_stats_zone's arguments) for http or stream alike. */
static char *
ngx_mesh_stats_define_zone(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *size_text)
{
    ssize_t                size;
    ngx_shm_zone_t        *shm_zone;
    ngx_mesh_stats_ctx_t  *ctx;

    size = ngx_parse_size(size_text);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mesh_stats_zone size \"%V\": at least %uz bytes",
                           size_text, 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_mesh_stats_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, name, size, &ngx_mesh_stats_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate mesh_stats_zone \"%V\"", name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_mesh_stats_init_zone;
    shm_zone->data = ctx;

    return NGX_CONF_OK;
}


/* The zone named name, defined here or later (nginx refuses one never sized). */
static ngx_shm_zone_t *
ngx_mesh_stats_zone_ref(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_shared_memory_add(cf, name, 0, &ngx_mesh_stats_tag);
}


/* mesh_stats's arguments, read alike for http and stream. */
typedef struct {
    ngx_shm_zone_t  *zone;   /* NULL for "off" */
    ngx_str_t       *key;
    ngx_str_t        cond;   /* empty without if= */
} ngx_mesh_stats_args_t;


/* Reads "off", or "<zone> <key> [if=<value>]"; the caller compiles key and cond. */
static char *
ngx_mesh_stats_read_args(ngx_conf_t *cf, ngx_mesh_stats_args_t *args)
{
    ngx_str_t  *value = cf->args->elts;

    ngx_memzero(args, sizeof(ngx_mesh_stats_args_t));

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    if (cf->args->nelts < 3) {
        return "needs a zone and a key, or \"off\"";
    }

    if (cf->args->nelts == 4) {
        if (ngx_strncmp(value[3].data, "if=", 3) != 0 || value[3].len == 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": expected if=<value>", &value[3]);
            return NGX_CONF_ERROR;
        }

        args->cond.len = value[3].len - 3;
        args->cond.data = value[3].data + 3;
    }

    args->zone = ngx_mesh_stats_zone_ref(cf, &value[1]);
    if (args->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    args->key = &value[2];

    return NGX_CONF_OK;
}


/* Adds one request (session) of ms milliseconds to the series of key. */
static void
ngx_mesh_stats_count(ngx_shm_zone_t *shm_zone, ngx_str_t *key, ngx_msec_int_t ms,
    off_t sent, off_t received)
{
    uint32_t                hash;
    ngx_uint_t              i;
    ngx_mesh_stats_ctx_t   *ctx;
    ngx_mesh_stats_node_t  *node;

    ctx = shm_zone->data;

    if (ms < 0) {
        ms = 0;
    }

    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    node = (ngx_mesh_stats_node_t *) ngx_str_rbtree_lookup(&ctx->sh->rbtree, key, hash);

    if (node == NULL) {
        if (key->len > NGX_MESH_STATS_MAX_KEY) {
            node = NULL;

        } else {
            node = ngx_slab_calloc_locked(ctx->shpool,
                                          offsetof(ngx_mesh_stats_node_t, key) + key->len);
        }

        if (node == NULL) {
            ctx->sh->lost++;
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return;
        }

        ngx_memcpy(node->key, key->data, key->len);

        node->sn.node.key = hash;
        node->sn.str.len = key->len;
        node->sn.str.data = node->key;

        ngx_rbtree_insert(&ctx->sh->rbtree, &node->sn.node);
        ctx->sh->series++;
    }

    node->count++;
    node->sum_ms += (uint64_t) ms;
    node->sent += (uint64_t) (sent > 0 ? sent : 0);
    node->received += (uint64_t) (received > 0 ? received : 0);

    for (i = 0; i < NGX_MESH_STATS_BOUNDS && ms > ngx_mesh_stats_bounds[i]; i++) {
        /* void */
    }

    node->buckets[i]++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * The key as counted: a line feed or carriage return (which would end the series' line in the
 * dump) becomes a space, in a copy from pool when there is one; NGX_ERROR when out of memory.
 */
static ngx_int_t
ngx_mesh_stats_clean_key(ngx_pool_t *pool, ngx_str_t *key)
{
    u_char      *copy;
    ngx_uint_t   i;

    for (i = 0; i < key->len; i++) {
        if (key->data[i] == LF || key->data[i] == CR) {
            break;
        }
    }

    if (i == key->len) {
        return NGX_OK;
    }

    copy = ngx_pnalloc(pool, key->len);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < key->len; i++) {
        copy[i] = (key->data[i] == LF || key->data[i] == CR) ? ' ' : key->data[i];
    }

    key->data = copy;

    return NGX_OK;
}


/* True when a condition's value says "count": neither empty nor "0". */
static ngx_uint_t
ngx_mesh_stats_wanted(ngx_str_t *value)
{
    return !(value->len == 0 || (value->len == 1 && value->data[0] == '0'));
}


/* ---- http ---- */

typedef struct {
    ngx_shm_zone_t            *zone;     /* NULL: off; NGX_CONF_UNSET_PTR: inherit */
    ngx_http_complex_value_t  *key;
    ngx_http_complex_value_t  *cond;
    ngx_array_t               *dump;     /* of ngx_shm_zone_t *: mesh_stats_dump's zones */
} ngx_http_mesh_stats_loc_conf_t;


static ngx_int_t ngx_http_mesh_stats_init(ngx_conf_t *cf);
static void *ngx_http_mesh_stats_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mesh_stats_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
static char *ngx_http_mesh_stats_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_stats_dump(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_http_mesh_stats_commands[] = {

    { ngx_string("mesh_stats_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_mesh_stats_zone,
      0,
      0,
      NULL },

    { ngx_string("mesh_stats"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_mesh_stats,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_stats_dump"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mesh_stats_dump,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mesh_stats_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_mesh_stats_init,              /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_mesh_stats_create_loc_conf,   /* create location configuration */
    ngx_http_mesh_stats_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_mesh_stats_module = {
    NGX_MODULE_V1,
    &ngx_http_mesh_stats_module_ctx,       /* module context */
    ngx_http_mesh_stats_commands,          /* module directives */
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


static void *
ngx_http_mesh_stats_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mesh_stats_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mesh_stats_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->zone = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_mesh_stats_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mesh_stats_loc_conf_t  *prev = parent;
    ngx_http_mesh_stats_loc_conf_t  *conf = child;

    (void) cf;

    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = (prev->zone == NGX_CONF_UNSET_PTR) ? NULL : prev->zone;
        conf->key = prev->key;
        conf->cond = prev->cond;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_mesh_stats_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *value = cf->args->elts;

    (void) cmd;
    (void) conf;

    return ngx_mesh_stats_define_zone(cf, &value[1], &value[2]);
}


/* Compiles value into a complex value of the http module. */
static ngx_http_complex_value_t *
ngx_http_mesh_stats_compile(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NULL;
    }

    return cv;
}


static char *
ngx_http_mesh_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_stats_loc_conf_t  *mlcf = conf;

    char                   *rv;
    ngx_mesh_stats_args_t   args;

    (void) cmd;

    if (mlcf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    rv = ngx_mesh_stats_read_args(cf, &args);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mlcf->zone = args.zone;

    if (args.zone == NULL) {
        return NGX_CONF_OK;
    }

    mlcf->key = ngx_http_mesh_stats_compile(cf, args.key);
    if (mlcf->key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (args.cond.len > 0) {
        mlcf->cond = ngx_http_mesh_stats_compile(cf, &args.cond);
        if (mlcf->cond == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mesh_stats_handler(ngx_http_request_t *r)
{
    ngx_str_t                        key, cond;
    ngx_time_t                      *tp;
    ngx_msec_int_t                   ms;
    ngx_http_mesh_stats_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_stats_module);

    if (mlcf->zone == NULL || mlcf->zone->data == NULL) {
        return NGX_OK;
    }

    if (mlcf->cond != NULL) {
        if (ngx_http_complex_value(r, mlcf->cond, &cond) != NGX_OK
            || !ngx_mesh_stats_wanted(&cond))
        {
            return NGX_OK;
        }
    }

    if (ngx_http_complex_value(r, mlcf->key, &key) != NGX_OK
        || ngx_mesh_stats_clean_key(r->pool, &key) != NGX_OK)
    {
        return NGX_OK;
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000 + (tp->msec - r->start_msec));

    ngx_mesh_stats_count(mlcf->zone, &key, ms, 0, 0);

    return NGX_OK;
}


static ngx_int_t
ngx_http_mesh_stats_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mesh_stats_handler;

    return NGX_OK;
}


/* Prints one zone into b (sized by the caller), emptying it when take is set. */
static u_char *
ngx_http_mesh_stats_print_zone(ngx_http_request_t *r, ngx_shm_zone_t *shm_zone,
    ngx_uint_t take)
{
    u_char                 *buf, *p;
    size_t                  size;
    ngx_uint_t              i, n;
    ngx_rbtree_t           *tree;
    ngx_rbtree_node_t      *rn, **taken;
    ngx_mesh_stats_ctx_t   *ctx;
    ngx_mesh_stats_node_t  *node;

    ctx = shm_zone->data;
    tree = &ctx->sh->rbtree;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* one line per series: five numbers, the buckets, the key, at most 21 bytes a number */
    size = 128 + shm_zone->shm.name.len + NGX_MESH_STATS_BOUNDS * (NGX_INT64_LEN + 1);

    for (rn = (tree->root == tree->sentinel) ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         rn != NULL;
         rn = ngx_rbtree_next(tree, rn))
    {
        node = (ngx_mesh_stats_node_t *) rn;
        size += (4 + NGX_MESH_STATS_BUCKETS) * (NGX_INT64_LEN + 1) + node->sn.str.len + 1;
    }

    buf = ngx_pnalloc(r->pool, size + 1);
    taken = take ? ngx_palloc(r->pool, (ctx->sh->series + 1) * sizeof(ngx_rbtree_node_t *))
                 : NULL;

    if (buf == NULL || (take && taken == NULL)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NULL;
    }

    p = ngx_sprintf(buf, "zone %V series %ui lost %uL buckets ",
                    &shm_zone->shm.name, ctx->sh->series, ctx->sh->lost);

    for (i = 0; i < NGX_MESH_STATS_BOUNDS; i++) {
        p = ngx_sprintf(p, i == 0 ? "%M" : ",%M", (ngx_msec_t) ngx_mesh_stats_bounds[i]);
    }

    *p++ = LF;
    n = 0;

    for (rn = (tree->root == tree->sentinel) ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         rn != NULL;
         rn = ngx_rbtree_next(tree, rn))
    {
        node = (ngx_mesh_stats_node_t *) rn;

        p = ngx_sprintf(p, "%uL %uL %uL %uL ",
                        node->count, node->sum_ms, node->sent, node->received);

        for (i = 0; i < NGX_MESH_STATS_BUCKETS; i++) {
            p = ngx_sprintf(p, i == 0 ? "%uL" : ",%uL", node->buckets[i]);
        }

        p = ngx_sprintf(p, " %V", &node->sn.str);
        *p++ = LF;

        if (take && n < ctx->sh->series) {
            taken[n++] = rn;
        }
    }

    if (take) {
        /* the tree is dropped whole, then its nodes freed: no walk over freed nodes */
        ngx_rbtree_init(tree, &ctx->sh->sentinel, ngx_str_rbtree_insert_value);

        for (i = 0; i < n; i++) {
            ngx_slab_free_locked(ctx->shpool, taken[i]);
        }

        ctx->sh->series = 0;
        ctx->sh->lost = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    *p = '\0';

    return buf;
}


static ngx_int_t
ngx_http_mesh_stats_dump_handler(ngx_http_request_t *r)
{
    u_char                          *text;
    ngx_int_t                        rc;
    ngx_uint_t                       i, take;
    ngx_buf_t                       *b;
    ngx_chain_t                     *out, **last, *cl;
    ngx_shm_zone_t                 **zones;
    ngx_http_mesh_stats_loc_conf_t  *mlcf;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_stats_module);
    take = (r->method == NGX_HTTP_POST);
    zones = mlcf->dump->elts;
    out = NULL;
    last = &out;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = 0;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    for (i = 0; i < mlcf->dump->nelts; i++) {
        if (zones[i]->data == NULL) {
            continue;
        }

        text = ngx_http_mesh_stats_print_zone(r, zones[i], take);
        if (text == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->pos = text;
        b->last = text + ngx_strlen(text);
        b->memory = 1;
        r->headers_out.content_length_n += b->last - b->pos;

        cl->buf = b;
        cl->next = NULL;
        *last = cl;
        last = &cl->next;
    }

    r->header_only = (r->method == NGX_HTTP_HEAD);

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || out == NULL) {
        return rc;
    }

    for (cl = out; cl->next != NULL; cl = cl->next) {
        /* void */
    }

    cl->buf->last_buf = (r == r->main) ? 1 : 0;
    cl->buf->last_in_chain = 1;

    return ngx_http_output_filter(r, out);
}


static char *
ngx_http_mesh_stats_dump(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_stats_loc_conf_t  *mlcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_shm_zone_t           **zone;
    ngx_http_core_loc_conf_t  *clcf;

    (void) cmd;

    if (mlcf->dump != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mlcf->dump = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(ngx_shm_zone_t *));
    if (mlcf->dump == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        zone = ngx_array_push(mlcf->dump);
        if (zone == NULL) {
            return NGX_CONF_ERROR;
        }

        *zone = ngx_mesh_stats_zone_ref(cf, &value[i]);
        if (*zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mesh_stats_dump_handler;

    return NGX_CONF_OK;
}


/* ---- stream ---- */

typedef struct {
    ngx_shm_zone_t              *zone;   /* NULL: off; NGX_CONF_UNSET_PTR: inherit */
    ngx_stream_complex_value_t  *key;
    ngx_stream_complex_value_t  *cond;
} ngx_stream_mesh_stats_srv_conf_t;


static ngx_int_t ngx_stream_mesh_stats_init(ngx_conf_t *cf);
static void *ngx_stream_mesh_stats_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_mesh_stats_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child);
static char *ngx_stream_mesh_stats_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_stream_mesh_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_stream_mesh_stats_commands[] = {

    { ngx_string("mesh_stats_zone"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_stream_mesh_stats_zone,
      0,
      0,
      NULL },

    { ngx_string("mesh_stats"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE123,
      ngx_stream_mesh_stats,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_mesh_stats_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_stream_mesh_stats_init,            /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_mesh_stats_create_srv_conf, /* create server configuration */
    ngx_stream_mesh_stats_merge_srv_conf   /* merge server configuration */
};


ngx_module_t  ngx_stream_mesh_stats_module = {
    NGX_MODULE_V1,
    &ngx_stream_mesh_stats_module_ctx,     /* module context */
    ngx_stream_mesh_stats_commands,        /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_stream_mesh_stats_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_mesh_stats_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_mesh_stats_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->zone = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_stream_mesh_stats_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_stream_mesh_stats_srv_conf_t  *prev = parent;
    ngx_stream_mesh_stats_srv_conf_t  *conf = child;

    (void) cf;

    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = (prev->zone == NGX_CONF_UNSET_PTR) ? NULL : prev->zone;
        conf->key = prev->key;
        conf->cond = prev->cond;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_mesh_stats_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *value = cf->args->elts;

    (void) cmd;
    (void) conf;

    return ngx_mesh_stats_define_zone(cf, &value[1], &value[2]);
}


/* Compiles value into a complex value of the stream module. */
static ngx_stream_complex_value_t *
ngx_stream_mesh_stats_compile(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_stream_complex_value_t          *cv;
    ngx_stream_compile_complex_value_t   ccv;

    cv = ngx_palloc(cf->pool, sizeof(ngx_stream_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    ngx_memzero(&ccv, sizeof(ngx_stream_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    if (ngx_stream_compile_complex_value(&ccv) != NGX_OK) {
        return NULL;
    }

    return cv;
}


static char *
ngx_stream_mesh_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_mesh_stats_srv_conf_t  *mscf = conf;

    char                   *rv;
    ngx_mesh_stats_args_t   args;

    (void) cmd;

    if (mscf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    rv = ngx_mesh_stats_read_args(cf, &args);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mscf->zone = args.zone;

    if (args.zone == NULL) {
        return NGX_CONF_OK;
    }

    mscf->key = ngx_stream_mesh_stats_compile(cf, args.key);
    if (mscf->key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (args.cond.len > 0) {
        mscf->cond = ngx_stream_mesh_stats_compile(cf, &args.cond);
        if (mscf->cond == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_mesh_stats_handler(ngx_stream_session_t *s)
{
    ngx_str_t                          key, cond;
    ngx_time_t                        *tp;
    ngx_msec_int_t                     ms;
    ngx_stream_mesh_stats_srv_conf_t  *mscf;

    mscf = ngx_stream_get_module_srv_conf(s, ngx_stream_mesh_stats_module);

    if (mscf->zone == NULL || mscf->zone->data == NULL) {
        return NGX_OK;
    }

    if (mscf->cond != NULL) {
        if (ngx_stream_complex_value(s, mscf->cond, &cond) != NGX_OK
            || !ngx_mesh_stats_wanted(&cond))
        {
            return NGX_OK;
        }
    }

    if (ngx_stream_complex_value(s, mscf->key, &key) != NGX_OK
        || ngx_mesh_stats_clean_key(s->connection->pool, &key) != NGX_OK)
    {
        return NGX_OK;
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - s->start_sec) * 1000 + (tp->msec - s->start_msec));

    ngx_mesh_stats_count(mscf->zone, &key, ms, s->connection->sent, s->received);

    return NGX_OK;
}


static ngx_int_t
ngx_stream_mesh_stats_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt        *h;
    ngx_stream_core_main_conf_t  *cmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_mesh_stats_handler;

    return NGX_OK;
}
