/*
 * ngx_mesh_retry: the wait before a retry, and the deadline of a request and its retries.
 *
 *   location @retry_1 {
 *       mesh_retry_backoff 100ms deadline=2s;    # deadline= is optional
 *       proxy_pass ...;
 *   }
 *
 * The mesh retries a request by sending it to a named location (error_page ... = @retry_1),
 * one per retry, each of which proxies it once more. nginx itself never waits between two
 * tries, and knows no time limit for a request as a whole. In a location with
 * mesh_retry_backoff:
 *
 *   - when the request has run for so long that waiting the backoff would take it to or past
 *     its deadline (counted from when its first byte arrived), it is answered 504 at once;
 *   - otherwise it waits the backoff (0: not at all), then goes on to the location's content.
 *
 * The wait happens once per location a request enters, in the preaccess phase, the way
 * limit_req delays a request: the connection's write event is marked delayed with a timer, and
 * the phases go on when it fires. The client may close meanwhile (nginx notices, as it does
 * under limit_req). HTTP/2 streams wait the same way.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_msec_t  backoff;             /* NGX_CONF_UNSET_MSEC: no mesh_retry_backoff here */
    ngx_msec_t  deadline;            /* 0: none */
} ngx_http_mesh_retry_loc_conf_t;


typedef struct {
    void       *waited;              /* the location conf the request last waited in */
} ngx_http_mesh_retry_ctx_t;


static ngx_int_t ngx_http_mesh_retry_init(ngx_conf_t *cf);
static void *ngx_http_mesh_retry_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mesh_retry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
static char *ngx_http_mesh_retry_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_mesh_retry_handler(ngx_http_request_t *r);
static void ngx_http_mesh_retry_wake(ngx_http_request_t *r);


static ngx_command_t  ngx_http_mesh_retry_commands[] = {

    { ngx_string("mesh_retry_backoff"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_mesh_retry_backoff,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mesh_retry_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_mesh_retry_init,              /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_mesh_retry_create_loc_conf,   /* create location configuration */
    ngx_http_mesh_retry_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_mesh_retry_module = {
    NGX_MODULE_V1,
    &ngx_http_mesh_retry_module_ctx,       /* module context */
    ngx_http_mesh_retry_commands,          /* module directives */
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
ngx_http_mesh_retry_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mesh_retry_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mesh_retry_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->backoff = NGX_CONF_UNSET_MSEC;
    conf->deadline = NGX_CONF_UNSET_MSEC;

    return conf;
}


/* Not inherited: a wait belongs to the location that retries, not to the ones inside it. */
static char *
ngx_http_mesh_retry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mesh_retry_loc_conf_t  *conf = child;

    if (conf->deadline == NGX_CONF_UNSET_MSEC) {
        conf->deadline = 0;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_mesh_retry_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mesh_retry_loc_conf_t *rlcf = conf;

    ngx_str_t   *value, deadline;
    ngx_msec_t   msec;

    if (rlcf->backoff != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    msec = ngx_parse_time(&value[1], 0);
    if (msec == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid backoff \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    rlcf->backoff = msec;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (value[2].len <= 9 || ngx_strncmp(value[2].data, "deadline=", 9) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    deadline.data = value[2].data + 9;
    deadline.len = value[2].len - 9;

    msec = ngx_parse_time(&deadline, 0);
    if (msec == (ngx_msec_t) NGX_ERROR || msec == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid deadline \"%V\"", &deadline);
        return NGX_CONF_ERROR;
    }

    rlcf->deadline = msec;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mesh_retry_handler(ngx_http_request_t *r)
{
    ngx_msec_int_t                   elapsed;
    ngx_time_t                      *tp;
    ngx_http_mesh_retry_ctx_t       *ctx;
    ngx_http_mesh_retry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_mesh_retry_module);

    if (rlcf->backoff == NGX_CONF_UNSET_MSEC || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_mesh_retry_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mesh_retry_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_mesh_retry_module);
    }

    if (ctx->waited == rlcf) {
        return NGX_DECLINED;
    }

    ctx->waited = rlcf;

    if (rlcf->deadline != 0) {
        tp = ngx_timeofday();
        elapsed = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                                    + (tp->msec - r->start_msec));

        if (elapsed < 0) {
            elapsed = 0;
        }

        if ((ngx_msec_t) elapsed + rlcf->backoff >= rlcf->deadline) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "mesh retry: deadline of %M ms reached after %M ms",
                          rlcf->deadline, (ngx_msec_t) elapsed);
            return NGX_HTTP_GATEWAY_TIME_OUT;
        }
    }

    if (rlcf->backoff == 0) {
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "mesh retry: waiting %M ms", rlcf->backoff);

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_mesh_retry_wake;

    r->connection->write->delayed = 1;
    ngx_add_timer(r->connection->write, rlcf->backoff);

    return NGX_AGAIN;
}


static void
ngx_http_mesh_retry_wake(ngx_http_request_t *r)
{
    ngx_event_t  *wev;

    wev = r->connection->write;

    if (wev->delayed) {
        /* woken by something other than the timer: keep waiting */

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_mesh_retry_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mesh_retry_handler;

    return NGX_OK;
}
