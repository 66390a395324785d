/*
 * ngx_mesh_members: upstream membership that changes without a reload.
 *
 *   http {
 *       mesh_members /etc/nginx-mesh/members;
 *       upstream mesh_shop__api_8080 {
 *           least_conn;                      # any method: after it, before keepalive
 *           mesh_upstream_slots;
 *           server 127.0.0.1:1 down;         # slots: as many as members may ever be
 *           server 127.0.0.1:1 down;
 *           keepalive 32;
 *       }
 *       server {
 *           listen unix:/run/nginx.sock;
 *           location = /members { mesh_members_update; }   # PUT: read the file again
 *       }
 *   }
 *   stream {
 *       mesh_members /etc/nginx-mesh/members;               # the same file
 *       upstream mesh_shop__db_5432 { mesh_upstream_slots; server 127.0.0.1:1 down; }
 *       mesh_members_map outbound $mesh_original_dst $mesh_endpoint $mesh_original_dst;
 *   }
 *
 * The members file, one entry per line (fields separated by spaces; "#" starts a comment):
 *
 *   upstream <name> <addr:port>... [backup <addr:port>...]
 *   map <table> <key> <value>
 *
 * An upstream with mesh_upstream_slots takes its servers from the file's line of its name: its
 * server lines are only slots, in the order the members fill them (primary slots, then backup
 * slots). Every balancing method keeps working, because the members are put into nginx's own
 * round-robin peers: the first k slots hold the k members, linked in order, and the peers'
 * count, weight and tries say k. A member that stays keeps its slot and its state (fails,
 * TLS session); a slot that gets a new address gets new address buffers, so a connection in
 * flight, or one a keepalive cache holds, keeps the address it was opened to. An upstream the
 * file does not name keeps what it had; members beyond the slots are left out (logged).
 *
 * mesh_members_map defines $var as the file's map entry "<table> <key>" for the key's value
 * (variables allowed), or the default (variables allowed; empty when absent).
 *
 * When it changes: a PUT (or POST) to mesh_members_update adds one to a counter in shared
 * memory, and each worker reads the file again when it next needs the members and sees the
 * counter moved, so every worker (also those of an older configuration) follows. The counter
 * survives reloads; a new worker reads the file on first use. The file must be replaced
 * atomically (written beside it, then renamed). A file that does not parse changes nothing:
 * the worker logs the line at fault and keeps the members it has; the PUT answers 422 with
 * that line.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_stream.h>


#define NGX_MESH_MEMBERS_MAX_FILE  (64 * 1024 * 1024)
#define NGX_MESH_SLOT_FRESH        ((ngx_uint_t) -1)


/* An address as peers use it: interned per worker, never freed while the worker lives. */
typedef struct {
    ngx_str_node_t        node;        /* node.str: the address text */
    struct sockaddr      *sockaddr;
    socklen_t             socklen;
    ngx_str_t             name;
    ngx_uint_t            mark;        /* scratch of ngx_mesh_slots_plan: slot + 1 */
    ngx_uint_t            placed;      /* scratch of ngx_mesh_slots_plan */
} ngx_mesh_addr_t;


typedef struct {
    ngx_str_node_t        node;        /* node.str: the upstream's name */
    ngx_mesh_addr_t     **addr;        /* primary members, then backup members */
    ngx_uint_t            primary;
    ngx_uint_t            backup;
} ngx_mesh_members_upstream_t;


typedef struct {
    ngx_str_node_t        node;        /* node.str: "<table> <key>" */
    ngx_str_t             value;
} ngx_mesh_members_entry_t;


/* One parse of the file: everything in its pool. */
typedef struct {
    ngx_pool_t           *pool;
    ngx_rbtree_t          upstreams;
    ngx_rbtree_node_t     upstreams_sentinel;
    ngx_rbtree_t          entries;
    ngx_rbtree_node_t     entries_sentinel;
} ngx_mesh_members_table_t;


typedef struct {
    ngx_atomic_t          generation;
} ngx_mesh_members_sh_t;


/* The zone's data: the file, and the counter in shared memory. */
typedef struct {
    ngx_str_t             path;
    ngx_mesh_members_sh_t *sh;
} ngx_mesh_members_ctx_t;


/* The slots of one peers list (primary or backup), as the configuration made them. */
typedef struct {
    ngx_uint_t            nslots;
    ngx_uint_t            live;
    void                **peer;        /* the rr peer of each slot, in list order */
    ngx_mesh_addr_t     **occupant;    /* the member in each slot, NULL for none */
    ngx_mesh_addr_t     **old;         /* scratch of ngx_mesh_slots_plan */
    ngx_uint_t           *from;        /* scratch of ngx_mesh_slots_plan */
} ngx_mesh_slots_t;


/* Per process: the last good parse, and what was looked at. */
static ngx_mesh_members_table_t  *ngx_mesh_members_table;
static ngx_uint_t                 ngx_mesh_members_version;
static ngx_atomic_uint_t          ngx_mesh_members_seen;
static ngx_uint_t                 ngx_mesh_members_looked;
static ngx_rbtree_t               ngx_mesh_members_interned;
static ngx_rbtree_node_t          ngx_mesh_members_interned_sentinel;
static u_char                     ngx_mesh_members_error[512];

static ngx_uint_t                 ngx_mesh_members_tag;
static ngx_str_t                  ngx_mesh_members_zone_name = ngx_string("mesh_members");


/* ---- the file ---- */

static ngx_mesh_addr_t *
ngx_mesh_members_intern(ngx_str_t *text)
{
    uint32_t          hash;
    ngx_addr_t        addr;
    ngx_pool_t       *pool;
    ngx_mesh_addr_t  *a;

    if (ngx_mesh_members_interned.root == NULL) {
        ngx_rbtree_init(&ngx_mesh_members_interned, &ngx_mesh_members_interned_sentinel,
                        ngx_str_rbtree_insert_value);
    }

    hash = ngx_crc32_long(text->data, text->len);
    a = (ngx_mesh_addr_t *) ngx_str_rbtree_lookup(&ngx_mesh_members_interned, text, hash);
    if (a != NULL) {
        return a;
    }

    pool = ngx_cycle->pool;

    if (ngx_parse_addr_port(pool, &addr, text->data, text->len) != NGX_OK
        || ngx_inet_get_port(addr.sockaddr) == 0)
    {
        return NULL;
    }

    a = ngx_pcalloc(pool, sizeof(ngx_mesh_addr_t));
    if (a == NULL) {
        return NULL;
    }

    a->name.data = ngx_pstrdup(pool, text);
    if (a->name.data == NULL) {
        return NULL;
    }

    a->name.len = text->len;
    a->sockaddr = addr.sockaddr;
    a->socklen = addr.socklen;
    a->node.str = a->name;
    a->node.node.key = hash;
    ngx_rbtree_insert(&ngx_mesh_members_interned, &a->node.node);

    return a;
}


/* Splits a line into at most max fields; returns how many. */
static ngx_uint_t
ngx_mesh_members_fields(u_char *p, u_char *end, ngx_str_t *field, ngx_uint_t max)
{
    u_char      *start;
    ngx_uint_t   n;

    n = 0;

    while (p < end && n < max) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }

        if (p == end || *p == '#') {
            break;
        }

        start = p;

        while (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }

        field[n].data = start;
        field[n].len = p - start;
        n++;
    }

    return n;
}


#define NGX_MESH_MEMBERS_MAX_FIELDS  65536

static ngx_int_t
ngx_mesh_members_parse_line(ngx_mesh_members_table_t *t, ngx_str_t *field, ngx_uint_t n,
    u_char **why)
{
    ngx_uint_t                    i, at, backup;
    ngx_str_t                     key;
    ngx_mesh_members_entry_t     *e;
    ngx_mesh_members_upstream_t  *u;

    if (n == 4 && field[0].len == 3 && ngx_strncmp(field[0].data, "map", 3) == 0) {
        key.len = field[1].len + 1 + field[2].len;
        key.data = ngx_pnalloc(t->pool, key.len);
        e = ngx_pcalloc(t->pool, sizeof(ngx_mesh_members_entry_t));
        if (key.data == NULL || e == NULL) {
            *why = (u_char *) "out of memory";
            return NGX_ERROR;
        }

        ngx_sprintf(key.data, "%V %V", &field[1], &field[2]);
        e->node.str = key;
        e->node.node.key = ngx_crc32_long(key.data, key.len);
        e->value = field[3];

        if (ngx_str_rbtree_lookup(&t->entries, &key, e->node.node.key) != NULL) {
            *why = (u_char *) "map entry given twice";
            return NGX_ERROR;
        }

        ngx_rbtree_insert(&t->entries, &e->node.node);
        return NGX_OK;
    }

    if (n >= 2 && field[0].len == 8 && ngx_strncmp(field[0].data, "upstream", 8) == 0) {
        u = ngx_pcalloc(t->pool, sizeof(ngx_mesh_members_upstream_t));
        if (u == NULL) {
            *why = (u_char *) "out of memory";
            return NGX_ERROR;
        }

        u->addr = ngx_pcalloc(t->pool, sizeof(ngx_mesh_addr_t *) * (n - 2 + 1));
        if (u->addr == NULL) {
            *why = (u_char *) "out of memory";
            return NGX_ERROR;
        }

        u->node.str = field[1];
        u->node.node.key = ngx_crc32_long(field[1].data, field[1].len);
        at = 0;
        backup = 0;

        for (i = 2; i < n; i++) {
            if (field[i].len == 6 && ngx_strncmp(field[i].data, "backup", 6) == 0) {
                if (backup) {
                    *why = (u_char *) "\"backup\" given twice";
                    return NGX_ERROR;
                }

                backup = 1;
                u->primary = at;
                continue;
            }

            u->addr[at] = ngx_mesh_members_intern(&field[i]);
            if (u->addr[at] == NULL) {
                *why = (u_char *) "invalid address (addr:port)";
                return NGX_ERROR;
            }

            at++;
        }

        if (backup) {
            u->backup = at - u->primary;

        } else {
            u->primary = at;
        }

        if (ngx_str_rbtree_lookup(&t->upstreams, &field[1], u->node.node.key) != NULL) {
            *why = (u_char *) "upstream given twice";
            return NGX_ERROR;
        }

        ngx_rbtree_insert(&t->upstreams, &u->node.node);
        return NGX_OK;
    }

    *why = (u_char *) "expected \"upstream <name> <addr:port>... [backup <addr:port>...]\""
                      " or \"map <table> <key> <value>\"";
    return NGX_ERROR;
}


/* Reads the file into a new table; NULL, with ngx_mesh_members_error set, when it cannot. */
static ngx_mesh_members_table_t *
ngx_mesh_members_parse(ngx_str_t *path)
{
    u_char                    *buf, *p, *end, *eol, *why;
    size_t                     size;
    ssize_t                    got;
    ngx_fd_t                   fd;
    ngx_str_t                 *field;
    ngx_uint_t                 line, n;
    ngx_pool_t                *pool;
    ngx_file_info_t            fi;
    ngx_mesh_members_table_t  *t;

    /*
     * The table outlives the request that reads the file: its pool logs to the cycle's log,
     * never to that request's connection's, which is freed with the connection.
     */
    pool = ngx_create_pool(16384, ngx_cycle->log);
    if (pool == NULL) {
        ngx_sprintf(ngx_mesh_members_error, "out of memory%Z");
        return NULL;
    }

    t = ngx_pcalloc(pool, sizeof(ngx_mesh_members_table_t));
    field = ngx_palloc(pool, sizeof(ngx_str_t) * NGX_MESH_MEMBERS_MAX_FIELDS);
    if (t == NULL || field == NULL) {
        ngx_sprintf(ngx_mesh_members_error, "out of memory%Z");
        goto failed;
    }

    t->pool = pool;
    ngx_rbtree_init(&t->upstreams, &t->upstreams_sentinel, ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&t->entries, &t->entries_sentinel, ngx_str_rbtree_insert_value);

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            /* no file yet: no members */
            ngx_pfree(pool, field);
            return t;
        }

        ngx_sprintf(ngx_mesh_members_error, "%V: cannot open (errno %d)%Z", path, ngx_errno);
        goto failed;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > NGX_MESH_MEMBERS_MAX_FILE)
    {
        ngx_sprintf(ngx_mesh_members_error, "%V: cannot read, or larger than %d bytes%Z",
                    path, NGX_MESH_MEMBERS_MAX_FILE);
        ngx_close_file(fd);
        goto failed;
    }

    size = (size_t) ngx_file_size(&fi);
    buf = ngx_pnalloc(pool, size + 1);
    if (buf == NULL) {
        ngx_sprintf(ngx_mesh_members_error, "out of memory%Z");
        ngx_close_file(fd);
        goto failed;
    }

    got = (size == 0) ? 0 : ngx_read_fd(fd, buf, size);
    ngx_close_file(fd);

    if (got != (ssize_t) size) {
        ngx_sprintf(ngx_mesh_members_error, "%V: short read%Z", path);
        goto failed;
    }

    p = buf;
    end = buf + size;
    line = 0;

    while (p < end) {
        line++;
        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        n = ngx_mesh_members_fields(p, eol, field, NGX_MESH_MEMBERS_MAX_FIELDS);

        if (n == NGX_MESH_MEMBERS_MAX_FIELDS) {
            ngx_sprintf(ngx_mesh_members_error, "%V line %ui: more than %d fields%Z",
                        path, line, NGX_MESH_MEMBERS_MAX_FIELDS - 1);
            goto failed;
        }

        if (n > 0 && ngx_mesh_members_parse_line(t, field, n, &why) != NGX_OK) {
            ngx_sprintf(ngx_mesh_members_error, "%V line %ui: %s%Z", path, line, why);
            goto failed;
        }

        p = eol + 1;
    }

    /* the fields were scratch: a large allocation, handed back */
    ngx_pfree(pool, field);

    return t;

failed:

    ngx_destroy_pool(pool);
    return NULL;
}


/*
 * Makes this process's members those of the file, when the counter moved since it last looked
 * (or it never looked). NGX_ERROR, with ngx_mesh_members_error set, when the file does not
 * parse: the last good members stay.
 */
static ngx_int_t
ngx_mesh_members_refresh(ngx_mesh_members_ctx_t *ctx, ngx_log_t *log)
{
    ngx_atomic_uint_t          generation;
    ngx_mesh_members_table_t  *t;

    generation = ctx->sh->generation;

    if (ngx_mesh_members_looked && generation == ngx_mesh_members_seen) {
        return NGX_OK;
    }

    ngx_mesh_members_looked = 1;
    ngx_mesh_members_seen = generation;

    t = ngx_mesh_members_parse(&ctx->path);
    if (t == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "mesh members not changed: %s",
                      ngx_mesh_members_error);
        return NGX_ERROR;
    }

    if (ngx_mesh_members_table != NULL) {
        ngx_destroy_pool(ngx_mesh_members_table->pool);
    }

    ngx_mesh_members_table = t;
    ngx_mesh_members_version++;

    return NGX_OK;
}


static ngx_mesh_members_upstream_t *
ngx_mesh_members_upstream(ngx_str_t *name)
{
    if (ngx_mesh_members_table == NULL) {
        return NULL;
    }

    return (ngx_mesh_members_upstream_t *) ngx_str_rbtree_lookup(
        &ngx_mesh_members_table->upstreams, name, ngx_crc32_long(name->data, name->len));
}


/* The map entry "<table> <key>", or NULL. */
static ngx_str_t *
ngx_mesh_members_lookup(ngx_pool_t *pool, ngx_str_t *table, ngx_str_t *key)
{
    ngx_str_t                  full;
    ngx_mesh_members_entry_t  *e;

    if (ngx_mesh_members_table == NULL) {
        return NULL;
    }

    full.len = table->len + 1 + key->len;
    full.data = ngx_pnalloc(pool, full.len);
    if (full.data == NULL) {
        return NULL;
    }

    ngx_sprintf(full.data, "%V %V", table, key);

    e = (ngx_mesh_members_entry_t *) ngx_str_rbtree_lookup(
        &ngx_mesh_members_table->entries, &full, ngx_crc32_long(full.data, full.len));

    return (e == NULL) ? NULL : &e->value;
}


/* ---- the zone ---- */

static ngx_int_t
ngx_mesh_members_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t         *shpool;
    ngx_mesh_members_ctx_t  *octx = data;
    ngx_mesh_members_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx != NULL) {
        /* a reload: the counter goes on */
        ctx->sh = octx->sh;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(shpool, sizeof(ngx_mesh_members_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ctx->sh;

    return NGX_OK;
}


/* mesh_members <path>, in http or stream: both name one file and share one counter. */
static char *
ngx_mesh_members_define(ngx_conf_t *cf, ngx_mesh_members_ctx_t **slot)
{
    ngx_str_t               *value, path;
    ngx_shm_zone_t          *shm_zone;
    ngx_mesh_members_ctx_t  *ctx;

    if (*slot != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &ngx_mesh_members_zone_name, 8 * ngx_pagesize,
                                     &ngx_mesh_members_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx = shm_zone->data;

    if (ctx != NULL) {
        if (ctx->path.len != path.len || ngx_strncmp(ctx->path.data, path.data, path.len) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mesh_members \"%V\" differs from \"%V\" given before: "
                               "http and stream share one members file", &path, &ctx->path);
            return NGX_CONF_ERROR;
        }

        *slot = ctx;
        return NGX_CONF_OK;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_mesh_members_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the path must end in a NUL for open(): ngx_conf_full_name's copy does */
    ctx->path.data = ngx_pnalloc(cf->pool, path.len + 1);
    if (ctx->path.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ctx->path.data, path.data, path.len);
    ctx->path.data[path.len] = '\0';
    ctx->path.len = path.len;

    shm_zone->init = ngx_mesh_members_init_zone;
    shm_zone->data = ctx;
    *slot = ctx;

    return NGX_CONF_OK;
}


/* ---- slots ---- */

/*
 * Decides the slots of want[0..n): an address already in a slot below k (the members that
 * fit) stays in it; the others fill the free slots below k in order, taking the state of the
 * slot they were in (from[i] = that slot) or none (NGX_MESH_SLOT_FRESH). Sets occupant[] to
 * the result; returns k. A member given twice counts once.
 */
static ngx_uint_t
ngx_mesh_slots_plan(ngx_mesh_slots_t *set, ngx_mesh_addr_t **want, ngx_uint_t n)
{
    ngx_uint_t         i, k, f, fit;
    ngx_mesh_addr_t   *a, **next;

    for (i = 0; i < set->nslots; i++) {
        set->old[i] = set->occupant[i];

        if (set->old[i] != NULL) {
            set->old[i]->mark = i + 1;
        }
    }

    /* the members that fit: the first that are distinct, up to the slots */
    fit = 0;
    k = 0;

    for (i = 0; i < n && k < set->nslots; i++) {
        if (want[i]->placed) {
            continue;
        }

        want[i]->placed = 1;
        k++;
        fit = i + 1;
    }

    for (i = 0; i < fit; i++) {
        want[i]->placed = 0;
    }

    /* occupant[] becomes the new assignment; the old one is still in mark */
    next = set->occupant;

    for (i = 0; i < set->nslots; i++) {
        next[i] = NULL;
        set->from[i] = NGX_MESH_SLOT_FRESH;
    }

    for (i = 0; i < fit; i++) {
        a = want[i];

        if (a->mark != 0 && a->mark - 1 < k && next[a->mark - 1] == NULL) {
            next[a->mark - 1] = a;
            set->from[a->mark - 1] = a->mark - 1;
            a->placed = 1;
        }
    }

    f = 0;

    for (i = 0; i < fit; i++) {
        a = want[i];

        if (a->placed) {
            continue;
        }

        while (next[f] != NULL) {
            f++;
        }

        next[f] = a;
        set->from[f] = (a->mark != 0) ? a->mark - 1 : NGX_MESH_SLOT_FRESH;
        a->placed = 1;
    }

    for (i = 0; i < fit; i++) {
        want[i]->placed = 0;
    }

    for (i = 0; i < set->nslots; i++) {
        if (set->old[i] != NULL) {
            set->old[i]->mark = 0;
        }
    }

    return k;
}


/* What mesh_upstream_slots keeps of one upstream (http or stream). */
typedef struct {
    ngx_uint_t            enabled;
    ngx_uint_t            version;     /* of the members last put in */
    ngx_mesh_slots_t      primary;
    ngx_mesh_slots_t      backup;      /* nslots 0: no backup servers */
    void                 *backup_peers;
    void                 *original_init_upstream;
    void                 *original_init_peer;
} ngx_mesh_slots_conf_t;


static void
ngx_mesh_slots_log_overflow(ngx_log_t *log, ngx_str_t *name, ngx_uint_t want, ngx_uint_t have)
{
    if (want > have) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "upstream \"%V\": %ui members, %ui slots; the rest left out",
                      name, want, have);
    }
}


#define NGX_MESH_SLOTS(name)   ngx_http_mesh_slots_##name
#define NGX_MESH_PEERS_T       ngx_http_upstream_rr_peers_t
#define NGX_MESH_PEER_T        ngx_http_upstream_rr_peer_t
#define NGX_MESH_SLOTS_SSL     NGX_HTTP_SSL
#include "ngx_mesh_slots.h"
#undef NGX_MESH_SLOTS
#undef NGX_MESH_PEERS_T
#undef NGX_MESH_PEER_T
#undef NGX_MESH_SLOTS_SSL

#define NGX_MESH_SLOTS(name)   ngx_stream_mesh_slots_##name
#define NGX_MESH_PEERS_T       ngx_stream_upstream_rr_peers_t
#define NGX_MESH_PEER_T        ngx_stream_upstream_rr_peer_t
#define NGX_MESH_SLOTS_SSL     NGX_STREAM_SSL
#include "ngx_mesh_slots.h"
#undef NGX_MESH_SLOTS
#undef NGX_MESH_PEERS_T
#undef NGX_MESH_PEER_T
#undef NGX_MESH_SLOTS_SSL


/* ---- http ---- */

typedef struct {
    ngx_mesh_members_ctx_t  *ctx;
} ngx_http_mesh_members_main_conf_t;


static void *ngx_http_mesh_members_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_mesh_members_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_mesh_members(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_upstream_slots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mesh_members_update(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_http_mesh_members_commands[] = {

    { ngx_string("mesh_members"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_mesh_members,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_upstream_slots"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS,
      ngx_http_mesh_upstream_slots,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_members_update"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mesh_members_update,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mesh_members_module_ctx = {
    NULL,                                      /* preconfiguration */
    NULL,                                      /* postconfiguration */

    ngx_http_mesh_members_create_main_conf,    /* create main configuration */
    NULL,                                      /* init main configuration */

    ngx_http_mesh_members_create_srv_conf,     /* create server configuration */
    NULL,                                      /* merge server configuration */

    NULL,                                      /* create location configuration */
    NULL                                       /* merge location configuration */
};


ngx_module_t  ngx_http_mesh_members_module = {
    NGX_MODULE_V1,
    &ngx_http_mesh_members_module_ctx,         /* module context */
    ngx_http_mesh_members_commands,            /* module directives */
    NGX_HTTP_MODULE,                           /* module type */
    NULL,                                      /* init master */
    NULL,                                      /* init module */
    NULL,                                      /* init process */
    NULL,                                      /* init thread */
    NULL,                                      /* exit thread */
    NULL,                                      /* exit process */
    NULL,                                      /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_mesh_members_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_mesh_members_main_conf_t));
}


static void *
ngx_http_mesh_members_create_srv_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_mesh_slots_conf_t));
}


static char *
ngx_http_mesh_members(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_members_main_conf_t  *mmcf = conf;

    (void) cmd;

    return ngx_mesh_members_define(cf, &mmcf->ctx);
}


static ngx_int_t
ngx_http_mesh_slots_init_peer(ngx_http_request_t *r, ngx_http_upstream_srv_conf_t *us)
{
    ngx_int_t                             rc;
    ngx_uint_t                            saved[2] = { 0, 0 };
    ngx_mesh_slots_conf_t                *scf;
    ngx_http_upstream_rr_peers_t       *peers;
    ngx_http_mesh_members_main_conf_t  *mmcf;

    scf = ngx_http_conf_upstream_srv_conf(us, ngx_http_mesh_members_module);
    mmcf = ngx_http_get_module_main_conf(r, ngx_http_mesh_members_module);
    peers = us->peer.data;

    (void) ngx_mesh_members_refresh(mmcf->ctx, r->connection->log);
    ngx_http_mesh_slots_put(scf, peers, &us->host, r->connection->log);

    ngx_http_mesh_slots_widen(scf, peers, saved, 1);
    rc = ((ngx_http_upstream_init_peer_pt) scf->original_init_peer)(r, us);
    ngx_http_mesh_slots_widen(scf, peers, saved, 0);

    return rc;
}


static ngx_int_t
ngx_http_mesh_slots_init_upstream(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    ngx_mesh_slots_conf_t               *scf;
    ngx_http_mesh_members_main_conf_t   *mmcf;

    scf = ngx_http_conf_upstream_srv_conf(us, ngx_http_mesh_members_module);
    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mesh_members_module);

    if (mmcf->ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" has mesh_upstream_slots but http has no mesh_members",
                      &us->host);
        return NGX_ERROR;
    }

    if (((ngx_http_upstream_init_pt) scf->original_init_upstream)(cf, us) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_mesh_slots_record(cf, scf, us->peer.data) != NGX_OK) {
        return NGX_ERROR;
    }

    scf->original_init_peer = (void *) us->peer.init;
    us->peer.init = ngx_http_mesh_slots_init_peer;

    return NGX_OK;
}


static char *
ngx_http_mesh_upstream_slots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_mesh_slots_conf_t         *scf = conf;
    ngx_http_upstream_srv_conf_t  *uscf;

    (void) cmd;

    if (scf->enabled) {
        return "is duplicate";
    }

    scf->enabled = 1;
    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    scf->original_init_upstream = (void *) (uscf->peer.init_upstream
                                            ? uscf->peer.init_upstream
                                            : ngx_http_upstream_init_round_robin);
    uscf->peer.init_upstream = ngx_http_mesh_slots_init_upstream;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mesh_members_send(ngx_http_request_t *r, ngx_uint_t status, u_char *text)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    len = (text == NULL) ? 0 : ngx_strlen(text);

    r->headers_out.status = status;
    r->headers_out.content_length_n = (len == 0) ? 0 : len + 1;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (len == 0) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    *b->last++ = '\n';
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_mesh_members_update_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_mesh_members_ctx_t             *ctx;
    ngx_http_mesh_members_main_conf_t  *mmcf;

    if (!(r->method & (NGX_HTTP_PUT | NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_mesh_members_module);
    ctx = mmcf->ctx;

    (void) ngx_atomic_fetch_add(&ctx->sh->generation, 1);

    if (ngx_mesh_members_refresh(ctx, r->connection->log) != NGX_OK) {
        return ngx_http_mesh_members_send(r, 422,
                                          ngx_mesh_members_error);
    }

    return ngx_http_mesh_members_send(r, NGX_HTTP_NO_CONTENT, NULL);
}


static char *
ngx_http_mesh_members_update(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_mesh_members_main_conf_t  *mmcf;

    (void) cmd;
    (void) conf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mesh_members_module);
    if (mmcf->ctx == NULL) {
        return "needs mesh_members before it";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mesh_members_update_handler;

    return NGX_CONF_OK;
}


/* ---- stream ---- */

typedef struct {
    ngx_mesh_members_ctx_t  *ctx;
} ngx_stream_mesh_members_main_conf_t;


typedef struct {
    ngx_str_t                     table;
    ngx_stream_complex_value_t    key;
    ngx_stream_complex_value_t   *dflt;
} ngx_stream_mesh_members_map_t;


static void *ngx_stream_mesh_members_create_main_conf(ngx_conf_t *cf);
static void *ngx_stream_mesh_members_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_mesh_members(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_stream_mesh_upstream_slots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_stream_mesh_members_map(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_stream_mesh_members_commands[] = {

    { ngx_string("mesh_members"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_stream_mesh_members,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_upstream_slots"),
      NGX_STREAM_UPS_CONF|NGX_CONF_NOARGS,
      ngx_stream_mesh_upstream_slots,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mesh_members_map"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_stream_mesh_members_map,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_mesh_members_module_ctx = {
    NULL,                                      /* preconfiguration */
    NULL,                                      /* postconfiguration */

    ngx_stream_mesh_members_create_main_conf,  /* create main configuration */
    NULL,                                      /* init main configuration */

    ngx_stream_mesh_members_create_srv_conf,   /* create server configuration */
    NULL                                       /* merge server configuration */
};


ngx_module_t  ngx_stream_mesh_members_module = {
    NGX_MODULE_V1,
    &ngx_stream_mesh_members_module_ctx,       /* module context */
    ngx_stream_mesh_members_commands,          /* module directives */
    NGX_STREAM_MODULE,                         /* module type */
    NULL,                                      /* init master */
    NULL,                                      /* init module */
    NULL,                                      /* init process */
    NULL,                                      /* init thread */
    NULL,                                      /* exit thread */
    NULL,                                      /* exit process */
    NULL,                                      /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_stream_mesh_members_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_stream_mesh_members_main_conf_t));
}


static void *
ngx_stream_mesh_members_create_srv_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_mesh_slots_conf_t));
}


static char *
ngx_stream_mesh_members(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_mesh_members_main_conf_t  *mmcf = conf;

    (void) cmd;

    return ngx_mesh_members_define(cf, &mmcf->ctx);
}


static ngx_int_t
ngx_stream_mesh_slots_init_peer(ngx_stream_session_t *s, ngx_stream_upstream_srv_conf_t *us)
{
    ngx_int_t                             rc;
    ngx_uint_t                            saved[2] = { 0, 0 };
    ngx_mesh_slots_conf_t                *scf;
    ngx_stream_upstream_rr_peers_t       *peers;
    ngx_stream_mesh_members_main_conf_t  *mmcf;

    scf = ngx_stream_conf_upstream_srv_conf(us, ngx_stream_mesh_members_module);
    mmcf = ngx_stream_get_module_main_conf(s, ngx_stream_mesh_members_module);
    peers = us->peer.data;

    (void) ngx_mesh_members_refresh(mmcf->ctx, s->connection->log);
    ngx_stream_mesh_slots_put(scf, peers, &us->host, s->connection->log);

    ngx_stream_mesh_slots_widen(scf, peers, saved, 1);
    rc = ((ngx_stream_upstream_init_peer_pt) scf->original_init_peer)(s, us);
    ngx_stream_mesh_slots_widen(scf, peers, saved, 0);

    return rc;
}


static ngx_int_t
ngx_stream_mesh_slots_init_upstream(ngx_conf_t *cf, ngx_stream_upstream_srv_conf_t *us)
{
    ngx_mesh_slots_conf_t                *scf;
    ngx_stream_mesh_members_main_conf_t  *mmcf;

    scf = ngx_stream_conf_upstream_srv_conf(us, ngx_stream_mesh_members_module);
    mmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_mesh_members_module);

    if (mmcf->ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "upstream \"%V\" has mesh_upstream_slots but stream has no mesh_members",
                      &us->host);
        return NGX_ERROR;
    }

    if (((ngx_stream_upstream_init_pt) scf->original_init_upstream)(cf, us) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_stream_mesh_slots_record(cf, scf, us->peer.data) != NGX_OK) {
        return NGX_ERROR;
    }

    scf->original_init_peer = (void *) us->peer.init;
    us->peer.init = ngx_stream_mesh_slots_init_peer;

    return NGX_OK;
}


static char *
ngx_stream_mesh_upstream_slots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_mesh_slots_conf_t           *scf = conf;
    ngx_stream_upstream_srv_conf_t  *uscf;

    (void) cmd;

    if (scf->enabled) {
        return "is duplicate";
    }

    scf->enabled = 1;
    uscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_upstream_module);

    scf->original_init_upstream = (void *) (uscf->peer.init_upstream
                                            ? uscf->peer.init_upstream
                                            : ngx_stream_upstream_init_round_robin);
    uscf->peer.init_upstream = ngx_stream_mesh_slots_init_upstream;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_mesh_members_map_variable(ngx_stream_session_t *s, ngx_stream_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t                             key, value, *found;
    ngx_stream_mesh_members_map_t        *map = (ngx_stream_mesh_members_map_t *) data;
    ngx_stream_mesh_members_main_conf_t  *mmcf;

    mmcf = ngx_stream_get_module_main_conf(s, ngx_stream_mesh_members_module);
    (void) ngx_mesh_members_refresh(mmcf->ctx, s->connection->log);

    if (ngx_stream_complex_value(s, &map->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    found = ngx_mesh_members_lookup(s->connection->pool, &map->table, &key);

    if (found != NULL) {
        /* a copy: the next parse frees the table */
        value.len = found->len;
        value.data = ngx_pnalloc(s->connection->pool, value.len + 1);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(value.data, found->data, value.len);

    } else if (map->dflt != NULL) {
        if (ngx_stream_complex_value(s, map->dflt, &value) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_str_null(&value);
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static char *
ngx_stream_mesh_members_map(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_mesh_members_main_conf_t  *mmcf = conf;

    ngx_str_t                           *value, name;
    ngx_stream_variable_t               *var;
    ngx_stream_mesh_members_map_t       *map;
    ngx_stream_compile_complex_value_t   ccv;

    (void) cmd;

    if (mmcf->ctx == NULL) {
        return "needs mesh_members before it";
    }

    value = cf->args->elts;

    map = ngx_pcalloc(cf->pool, sizeof(ngx_stream_mesh_members_map_t));
    if (map == NULL) {
        return NGX_CONF_ERROR;
    }

    map->table = value[1];

    ngx_memzero(&ccv, sizeof(ngx_stream_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &map->key;

    if (ngx_stream_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    name = value[3];

    if (name.len < 2 || name.data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid variable name \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    name.len--;
    name.data++;

    if (cf->args->nelts == 5) {
        map->dflt = ngx_palloc(cf->pool, sizeof(ngx_stream_complex_value_t));
        if (map->dflt == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_stream_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[4];
        ccv.complex_value = map->dflt;

        if (ngx_stream_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    var = ngx_stream_add_variable(cf, &name, NGX_STREAM_VAR_CHANGEABLE);
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    var->get_handler = ngx_stream_mesh_members_map_variable;
    var->data = (uintptr_t) map;

    return NGX_CONF_OK;
}
