/*
 * ngx_mesh_handoff: a stream server hands a client connection to another of this nginx's
 * own servers, in the same worker, instead of proxying it to that server over loopback.
 *
 *   mesh_handoff <value>;      (stream, server)
 *
 * The sidecar's redirect servers pick where a connection goes: an HTTP server per Service
 * (127.x.y.z:8889), a TLS server, an upstream. Proxying to one of nginx's own listeners
 * costs a second TCP connection through the kernel, and every byte is copied twice more
 * each way. When <value> is "addr:port" with a loopback address and this nginx listens on
 * that port, the connection itself goes to that listener's server instead:
 *
 *   - the new server sees the connection as it saw the loopback hop: its local address is
 *     <value> (so $server_addr and $server_port are what they were), its peer is 127.0.0.1
 *     (so "allow 127.0.0.0/8" still admits it), and, when its listen has proxy_protocol,
 *     $proxy_protocol_addr and the rest are the client's, as "proxy_protocol on" would
 *     have sent them, without a header on the wire;
 *   - the session of the redirect server ends without a log phase: the connection is
 *     counted and logged by the server it went to, as the hop was.
 *
 * Any other value (an upstream's name, an address elsewhere) is declined, and the server's
 * content handler (proxy_pass) runs as before. A handoff happens before anything is read
 * from the client, in the access phase: so <value> must not depend on ssl_preread, whose
 * variables are empty then; a server with ssl_preread must not use this directive.
 *
 * Only servers of the http and stream modules take connections this way.
 *
 *   mesh_peek_client <time>;         (stream, server; 0, the default, is off)
 *   $mesh_client_tls                 (stream)
 *
 * A server that must tell TLS from plaintext before it picks where a connection goes would
 * need ssl_preread, which reads. With mesh_peek_client, the server waits, before its access
 * phase, until the client has sent something (or closed, or <time> has passed) and looks at
 * the first byte without reading it: $mesh_client_tls is "1" when that byte starts a TLS
 * handshake record, and "" otherwise, also when nothing came in time (a plaintext protocol
 * whose server speaks first goes on as plaintext). The connection can then still be handed
 * off.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_stream.h>


typedef struct {
    ngx_stream_complex_value_t  *target;
    ngx_msec_t                   peek;      /* 0: off */
} ngx_stream_mesh_handoff_srv_conf_t;


/* What mesh_peek_client found, per session. */
typedef struct {
    unsigned                     done:1;
    unsigned                     tls:1;
} ngx_stream_mesh_peek_ctx_t;


/* The first byte of a TLS record carrying a handshake message (a ClientHello). */
#define NGX_MESH_TLS_HANDSHAKE  0x16


static ngx_int_t ngx_stream_mesh_handoff_handler(ngx_stream_session_t *s);
static ngx_int_t ngx_stream_mesh_peek_handler(ngx_stream_session_t *s);
static ngx_int_t ngx_stream_mesh_client_tls_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_mesh_handoff_add_variables(ngx_conf_t *cf);
static ngx_listening_t *ngx_stream_mesh_handoff_listening(struct sockaddr *sa,
    socklen_t socklen);
static ngx_uint_t ngx_stream_mesh_handoff_loopback(struct sockaddr *sa);
static ngx_uint_t ngx_stream_mesh_handoff_any(struct sockaddr *sa);
static ngx_uint_t ngx_stream_mesh_handoff_stream_pp(ngx_listening_t *ls,
    struct sockaddr *local);
static ngx_proxy_protocol_t *ngx_stream_mesh_handoff_client(ngx_connection_t *c,
    struct sockaddr *peer, ngx_str_t *peer_text, struct sockaddr *local,
    socklen_t local_len);
static void *ngx_stream_mesh_handoff_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_mesh_handoff_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_stream_mesh_handoff_init(ngx_conf_t *cf);


static ngx_command_t  ngx_stream_mesh_handoff_commands[] = {

    { ngx_string("mesh_handoff"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_set_complex_value_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_mesh_handoff_srv_conf_t, target),
      NULL },

    { ngx_string("mesh_peek_client"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_mesh_handoff_srv_conf_t, peek),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_mesh_handoff_module_ctx = {
    ngx_stream_mesh_handoff_add_variables, /* preconfiguration */
    ngx_stream_mesh_handoff_init,          /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_mesh_handoff_create_srv_conf, /* create server configuration */
    ngx_stream_mesh_handoff_merge_srv_conf /* merge server configuration */
};


ngx_module_t  ngx_stream_mesh_handoff_module = {
    NGX_MODULE_V1,
    &ngx_stream_mesh_handoff_module_ctx,   /* module context */
    ngx_stream_mesh_handoff_commands,      /* module directives */
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


static ngx_int_t
ngx_stream_mesh_handoff_handler(ngx_stream_session_t *s)
{
    ngx_str_t                            value, peer_text;
    ngx_addr_t                           to;
    socklen_t                            local_len;
    ngx_event_t                         *rev;
    ngx_listening_t                     *ls;
    ngx_uint_t                           stream_proxy_protocol, ready;
    ngx_connection_t                    *c;
    struct sockaddr                     *peer, *local;
    struct sockaddr_in                  *hop;
    ngx_proxy_protocol_t                *client;
    ngx_http_connection_t               *hc;
    ngx_stream_mesh_handoff_srv_conf_t  *hscf;

    hscf = ngx_stream_get_module_srv_conf(s, ngx_stream_mesh_handoff_module);
    c = s->connection;

    if (hscf->target == NULL || c->type != SOCK_STREAM || c->ssl != NULL) {
        return NGX_DECLINED;
    }

    /* Bytes already read belong to this session; the new server would never see them. */
    if (c->buffer != NULL && c->buffer->pos != c->buffer->last) {
        return NGX_DECLINED;
    }

    if (ngx_stream_complex_value(s, hscf->target, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (value.len == 0
        || ngx_parse_addr_port(c->pool, &to, value.data, value.len) != NGX_OK
        || ngx_inet_get_port(to.sockaddr) == 0
        || !ngx_stream_mesh_handoff_loopback(to.sockaddr))
    {
        return NGX_DECLINED;
    }

    ls = ngx_stream_mesh_handoff_listening(to.sockaddr, to.socklen);
    if (ls == NULL) {
        return NGX_DECLINED;
    }

    /* The client as "proxy_protocol on" would have described it: its address, and ours. */
    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    peer = c->sockaddr;
    peer_text = c->addr_text;
    local = c->local_sockaddr;
    local_len = c->local_socklen;

    hop = ngx_pcalloc(c->pool, sizeof(struct sockaddr_in));
    if (hop == NULL) {
        return NGX_ERROR;
    }

    hop->sin_family = AF_INET;
    hop->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    hop->sin_port = htons(ngx_inet_get_port(peer));

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0, "mesh handoff to %V", &value);

    c->sockaddr = (struct sockaddr *) hop;
    c->socklen = sizeof(struct sockaddr_in);
    ngx_str_set(&c->addr_text, "127.0.0.1");
    c->local_sockaddr = to.sockaddr;
    c->local_socklen = to.socklen;
    c->listening = ls;

    /*
     * The new server must not read before its PROXY protocol state is set below. When the
     * client's bytes are already known to be there (mesh_peek_client waited for them), the
     * read event is posted at the end, as the socket is in epoll and will not report them
     * again; otherwise the new server adds it to epoll, which reports data already there.
     */
    rev = c->read;
    ready = rev->ready;
    rev->ready = 0;

    stream_proxy_protocol = ls->handler == ngx_stream_init_connection
                            && ngx_stream_mesh_handoff_stream_pp(ls, to.sockaddr);

    ls->handler(c);

    /*
     * This session is over; its memory stays in the connection's pool until the new
     * server closes the connection. That server may have done so already (a stream
     * server that only returns), and then the connection must not be touched.
     */
    if (c->fd == (ngx_socket_t) -1) {
        return NGX_DONE;
    }

    if (ls->handler == ngx_http_init_connection) {
        hc = c->data;

        if (hc->proxy_protocol) {
            client = ngx_stream_mesh_handoff_client(c, peer, &peer_text, local,
                                                    local_len);
            if (client == NULL) {
                ngx_http_close_connection(c);
                return NGX_DONE;
            }

            hc->proxy_protocol = 0;
            c->proxy_protocol = client;
            c->log->action = hc->ssl ? "SSL handshaking" : "waiting for request";
        }

    } else if (stream_proxy_protocol) {
        /*
         * A stream server whose listen has proxy_protocol is now waiting for the header (it
         * reads nothing while the read event is not ready); every other one has started its
         * session, or posted its start with accept_mutex.
         */
        client = ngx_stream_mesh_handoff_client(c, peer, &peer_text, local, local_len);
        if (client == NULL) {
            ngx_stream_finalize_session(c->data, NGX_STREAM_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }

        if (rev->timer_set) {
            ngx_del_timer(rev);
        }

        c->proxy_protocol = client;
        c->log->action = "initializing session";
        rev->handler = ngx_stream_session_handler;
        ngx_stream_session_handler(rev);

        if (c->fd == (ngx_socket_t) -1) {
            return NGX_DONE;
        }
    }

    if (ready) {
        rev->ready = 1;
        ngx_post_event(rev, &ngx_posted_events);
    }

    return NGX_DONE;
}


/*
 * mesh_peek_client, in the post-accept phase: waits, without reading, until the client's
 * first byte is there, and notes whether it starts a TLS handshake. While it waits, the
 * session stays in this phase: the read event (or its timer) runs the phases again.
 */
static ngx_int_t
ngx_stream_mesh_peek_handler(ngx_stream_session_t *s)
{
    u_char                               byte;
    ssize_t                              n;
    ngx_err_t                            err;
    ngx_event_t                         *rev;
    ngx_connection_t                    *c;
    ngx_stream_mesh_peek_ctx_t          *ctx;
    ngx_stream_mesh_handoff_srv_conf_t  *hscf;

    hscf = ngx_stream_get_module_srv_conf(s, ngx_stream_mesh_handoff_module);
    c = s->connection;

    if (hscf->peek == 0 || c->type != SOCK_STREAM) {
        return NGX_DECLINED;
    }

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_mesh_handoff_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(c->pool, sizeof(ngx_stream_mesh_peek_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_stream_set_ctx(s, ctx, ngx_stream_mesh_handoff_module);
    }

    if (ctx->done) {
        return NGX_DECLINED;
    }

    rev = c->read;

    if (rev->timedout) {
        /* Nothing came: a plaintext protocol whose server speaks first. */
        rev->timedout = 0;
        ctx->done = 1;
        return NGX_DECLINED;
    }

    n = recv(c->fd, (char *) &byte, 1, MSG_PEEK);
    err = ngx_socket_errno;

    if (n == -1 && err == NGX_EAGAIN) {
        rev->ready = 0;

        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        if (!rev->timer_set) {
            ngx_add_timer(rev, hscf->peek);
        }

        rev->handler = ngx_stream_session_handler;

        return NGX_AGAIN;
    }

    /* A byte, the end of the stream, or an error the proxying will meet again. */
    ctx->done = 1;
    ctx->tls = (n == 1 && byte == NGX_MESH_TLS_HANDSHAKE);

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_stream_mesh_client_tls_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_mesh_peek_ctx_t  *ctx;

    (void) data;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_mesh_handoff_module);

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    if (ctx != NULL && ctx->tls) {
        v->len = 1;
        v->data = (u_char *) "1";

    } else {
        v->len = 0;
        v->data = (u_char *) "";
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_mesh_handoff_add_variables(ngx_conf_t *cf)
{
    ngx_str_t               name = ngx_string("mesh_client_tls");
    ngx_stream_variable_t  *var;

    var = ngx_stream_add_variable(cf, &name, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_stream_mesh_client_tls_variable;

    return NGX_OK;
}


/*
 * The listening socket of this worker's cycle for sa, a loopback address: one on the same
 * address and port; else one on a wildcard address and that port; else one on another
 * loopback address and that port (all of 127.0.0.0/8 is this host, and a hop's address
 * only tells the new server which of its routes it serves). NULL when there is none, or
 * when it belongs to neither http nor stream.
 */
static ngx_listening_t *
ngx_stream_mesh_handoff_listening(struct sockaddr *sa, socklen_t socklen)
{
    in_port_t         port;
    ngx_uint_t        i;
    ngx_listening_t  *ls, *wildcard, *loopback;

    port = ngx_inet_get_port(sa);
    wildcard = NULL;
    loopback = NULL;
    ls = ngx_cycle->listening.elts;

    for (i = 0; i < ngx_cycle->listening.nelts; i++) {

        if (ls[i].fd == (ngx_socket_t) -1
            || ls[i].type != SOCK_STREAM
            || ls[i].sockaddr->sa_family != sa->sa_family
            || ngx_inet_get_port(ls[i].sockaddr) != port
            || (ls[i].handler != ngx_http_init_connection
                && ls[i].handler != ngx_stream_init_connection))
        {
            continue;
        }

#if (NGX_HAVE_REUSEPORT)
        if (ls[i].reuseport && ls[i].worker != ngx_worker) {
            continue;
        }
#endif

        if (ngx_cmp_sockaddr(ls[i].sockaddr, ls[i].socklen, sa, socklen, 1)
            == NGX_OK)
        {
            return &ls[i];
        }

        if (ngx_stream_mesh_handoff_any(ls[i].sockaddr)) {
            wildcard = &ls[i];

        } else if (ngx_stream_mesh_handoff_loopback(ls[i].sockaddr)) {
            loopback = &ls[i];
        }
    }

    return wildcard != NULL ? wildcard : loopback;
}


/* Whether sa is the wildcard address (http does not mark its listening sockets so). */
static ngx_uint_t
ngx_stream_mesh_handoff_any(struct sockaddr *sa)
{
    switch (sa->sa_family) {

    case AF_INET:
        return ((struct sockaddr_in *) sa)->sin_addr.s_addr == INADDR_ANY;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        return IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *) sa)->sin6_addr);
#endif

    default:
        return 0;
    }
}


static ngx_uint_t
ngx_stream_mesh_handoff_loopback(struct sockaddr *sa)
{
    switch (sa->sa_family) {

    case AF_INET:
        return (ntohl(((struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *) sa)->sin6_addr);
#endif

    default:
        return 0;
    }
}


/*
 * Whether the stream server that ngx_stream_init_connection will pick for a connection to
 * local on ls reads a PROXY protocol header: the same choice among the port's addresses.
 */
static ngx_uint_t
ngx_stream_mesh_handoff_stream_pp(ngx_listening_t *ls, struct sockaddr *local)
{
    ngx_uint_t             i;
    ngx_stream_port_t     *port;
    ngx_stream_in_addr_t  *addr;
#if (NGX_HAVE_INET6)
    ngx_stream_in6_addr_t *addr6;
#endif

    port = ls->servers;

#if (NGX_HAVE_INET6)
    if (local->sa_family == AF_INET6) {
        addr6 = port->addrs;

        for (i = 0; i + 1 < port->naddrs; i++) {
            if (ngx_memcmp(&addr6[i].addr6,
                           &((struct sockaddr_in6 *) local)->sin6_addr, 16)
                == 0)
            {
                break;
            }
        }

        return addr6[i].conf.proxy_protocol;
    }
#endif

    addr = port->addrs;

    for (i = 0; i + 1 < port->naddrs; i++) {
        if (addr[i].addr == ((struct sockaddr_in *) local)->sin_addr.s_addr) {
            break;
        }
    }

    return addr[i].conf.proxy_protocol;
}


/* The PROXY protocol fields of a header that names peer as the source and local as ours. */
static ngx_proxy_protocol_t *
ngx_stream_mesh_handoff_client(ngx_connection_t *c, struct sockaddr *peer,
    ngx_str_t *peer_text, struct sockaddr *local, socklen_t local_len)
{
    u_char                *p;
    ngx_proxy_protocol_t  *pp;

    pp = ngx_pcalloc(c->pool, sizeof(ngx_proxy_protocol_t));
    if (pp == NULL) {
        return NULL;
    }

    p = ngx_pnalloc(c->pool, NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return NULL;
    }

    pp->src_addr = *peer_text;
    pp->src_port = ngx_inet_get_port(peer);
    pp->dst_addr.data = p;
    pp->dst_addr.len = ngx_sock_ntop(local, local_len, p, NGX_SOCKADDR_STRLEN, 0);
    pp->dst_port = ngx_inet_get_port(local);

    return pp;
}


static void *
ngx_stream_mesh_handoff_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_mesh_handoff_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_mesh_handoff_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /* conf->target = NULL: no handoff */

    conf->peek = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_stream_mesh_handoff_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_stream_mesh_handoff_srv_conf_t  *prev = parent;
    ngx_stream_mesh_handoff_srv_conf_t  *conf = child;

    if (conf->target == NULL) {
        conf->target = prev->target;
    }

    ngx_conf_merge_msec_value(conf->peek, prev->peek, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_mesh_handoff_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt        *h;
    ngx_stream_core_main_conf_t  *cmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_mesh_handoff_handler;

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_POST_ACCEPT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_mesh_peek_handler;

    return NGX_OK;
}
