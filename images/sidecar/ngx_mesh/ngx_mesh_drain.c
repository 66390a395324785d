/*
 * ngx_mesh_drain: keep-alive connections that survive a reload without losing a request.
 *
 *   http {
 *       server {
 *           mesh_keepalive_drain on;    # or in http, for every server
 *       }
 *   }
 *
 * When nginx reloads, the old worker closes every HTTP/1.x keep-alive connection that is idle
 * at that instant. A client that wrote its next request on such a connection just before the
 * close arrived loses that request: it sees the connection closed, or reset, with no answer,
 * and only a client that retries gets its answer.
 *
 * With mesh_keepalive_drain on, an exiting worker instead closes a keep-alive connection only
 * after answering one more request on it. nginx itself says "Connection: close" on every
 * answer an exiting worker sends, the one close HTTP/1.1 defines as safe: the client knows not
 * to send on that connection again. The other ends of a connection are the ones nginx already
 * has: keepalive_timeout for a client that stays silent, and worker_shutdown_timeout for the
 * worker itself.
 *
 * That one more request is answered under the configuration the old worker has: turn it on
 * where that is harmless (the mesh's outbound servers, which only route), not where a reload
 * may have revoked access (a peer's nginx retries a request whose kept-alive connection closed
 * under it anyway).
 *
 * How: the log phase of every HTTP/1.x request in such a server posts an event, which runs once
 * nginx has put the connection into its keep-alive state (in the same turn of the event loop, so
 * before a reload's quit is acted on), and takes the connection off the list of idle
 * connections nginx closes when its worker starts exiting. Nothing else depends on that
 * mark: the connection stays reusable (nginx may still close it when it runs out of
 * connections) and its keep-alive timer runs as before. HTTP/2 connections are left alone: nginx
 * ends them with GOAWAY, which tells the client which requests were not processed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_flag_t  any;                 /* some server has it on */
} ngx_http_mesh_drain_main_conf_t;


typedef struct {
    ngx_flag_t  enable;
} ngx_http_mesh_drain_srv_conf_t;


/* One per connection slot of the worker: the event that clears the idle mark. */
typedef struct {
    ngx_event_t          event;
    ngx_atomic_uint_t    number;
} ngx_http_mesh_drain_slot_t;


static ngx_int_t ngx_http_mesh_drain_init(ngx_conf_t *cf);
static void *ngx_http_mesh_drain_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_mesh_drain_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_mesh_drain_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child);
static ngx_int_t ngx_http_mesh_drain_init_process(ngx_cycle_t *cycle);
static void ngx_http_mesh_drain_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_mesh_drain_log_handler(ngx_http_request_t *r);
static void ngx_http_mesh_drain_unmark(ngx_event_t *ev);


static ngx_http_mesh_drain_slot_t  *ngx_http_mesh_drain_slots;
static ngx_uint_t                   ngx_http_mesh_drain_nslots;


static ngx_command_t  ngx_http_mesh_drain_commands[] = {

    { ngx_string("mesh_keepalive_drain"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_mesh_drain_srv_conf_t, enable),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mesh_drain_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_mesh_drain_init,              /* postconfiguration */

    ngx_http_mesh_drain_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_mesh_drain_create_srv_conf,   /* create server configuration */
    ngx_http_mesh_drain_merge_srv_conf,    /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_mesh_drain_module = {
    NGX_MODULE_V1,
    &ngx_http_mesh_drain_module_ctx,       /* module context */
    ngx_http_mesh_drain_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_mesh_drain_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_mesh_drain_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_mesh_drain_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_mesh_drain_main_conf_t));
}


static void *
ngx_http_mesh_drain_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_mesh_drain_srv_conf_t  *dscf;

    dscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mesh_drain_srv_conf_t));
    if (dscf == NULL) {
        return NULL;
    }

    dscf->enable = NGX_CONF_UNSET;

    return dscf;
}


static char *
ngx_http_mesh_drain_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mesh_drain_srv_conf_t   *prev = parent;
    ngx_http_mesh_drain_srv_conf_t   *conf = child;
    ngx_http_mesh_drain_main_conf_t  *dmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    if (conf->enable) {
        dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mesh_drain_module);
        dmcf->any = 1;
    }

    return NGX_CONF_OK;
}


/* Off unless asked for: the log handler is only installed when some server has it on. */
static ngx_int_t
ngx_http_mesh_drain_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_mesh_drain_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mesh_drain_module);

    if (!dmcf->any) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mesh_drain_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mesh_drain_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_http_mesh_drain_main_conf_t  *dmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module) == NULL) {
        return NGX_OK;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mesh_drain_module);
    if (dmcf == NULL || !dmcf->any) {
        return NGX_OK;
    }

    ngx_http_mesh_drain_slots = ngx_calloc(cycle->connection_n
                                           * sizeof(ngx_http_mesh_drain_slot_t),
                                           cycle->log);
    if (ngx_http_mesh_drain_slots == NULL) {
        return NGX_ERROR;
    }

    ngx_http_mesh_drain_nslots = cycle->connection_n;

    for (i = 0; i < ngx_http_mesh_drain_nslots; i++) {
        ngx_http_mesh_drain_slots[i].event.handler = ngx_http_mesh_drain_unmark;
        ngx_http_mesh_drain_slots[i].event.log = cycle->log;
    }

    return NGX_OK;
}


static void
ngx_http_mesh_drain_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    if (ngx_http_mesh_drain_slots == NULL) {
        return;
    }

    for (i = 0; i < ngx_http_mesh_drain_nslots; i++) {
        if (ngx_http_mesh_drain_slots[i].event.posted) {
            ngx_delete_posted_event(&ngx_http_mesh_drain_slots[i].event);
        }
    }

    ngx_free(ngx_http_mesh_drain_slots);
    ngx_http_mesh_drain_slots = NULL;
    ngx_http_mesh_drain_nslots = 0;
}


/*
 * Runs when the request is freed, before ngx_http_set_keepalive marks the connection idle
 * (and after it has cleared r->keepalive, so whether the connection stays is not known yet);
 * the posted event runs after it, in this turn of the event loop, and finds out.
 */
static ngx_int_t
ngx_http_mesh_drain_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                       n;
    ngx_connection_t                *c;
    ngx_http_mesh_drain_slot_t      *slot;
    ngx_http_mesh_drain_srv_conf_t  *dscf;

    if (ngx_http_mesh_drain_slots == NULL || r != r->main) {
        return NGX_OK;
    }

    dscf = ngx_http_get_module_srv_conf(r, ngx_http_mesh_drain_module);
    if (!dscf->enable) {
        return NGX_OK;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return NGX_OK;
    }
#endif

    c = r->connection;
    n = c - ngx_cycle->connections;

    if (n >= ngx_http_mesh_drain_nslots) {
        return NGX_OK;
    }

    slot = &ngx_http_mesh_drain_slots[n];
    slot->number = c->number;
    slot->event.data = c;

    if (!slot->event.posted) {
        ngx_post_event(&slot->event, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_http_mesh_drain_unmark(ngx_event_t *ev)
{
    ngx_connection_t            *c;
    ngx_http_mesh_drain_slot_t  *slot;

    slot = (ngx_http_mesh_drain_slot_t *) ev;
    c = ev->data;

    /* The connection may have closed, and its slot been taken by another, since. */
    if (c->fd == (ngx_socket_t) -1 || c->number != slot->number || !c->idle || c->close) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "mesh keepalive drain: connection %uA stays open through a reload", c->number);

    c->idle = 0;
}

