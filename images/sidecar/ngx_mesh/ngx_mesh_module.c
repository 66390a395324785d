/*
 * ngx_mesh: variables the nginx-meshctl sidecar needs and stock nginx lacks.
 *
 * Two modules, one shared core, the same variables in http and stream:
 *
 *   $mesh_original_dst       "addr:port" ("[addr]:port" for IPv6), the destination the
 *                            client connected to before an iptables REDIRECT; ready for
 *                            stream "proxy_pass $mesh_original_dst;".
 *   $mesh_original_dst_addr  its address alone (IPv6 without brackets, as $server_addr).
 *   $mesh_original_dst_port  its port alone.
 *   $mesh_peer_spiffe_id     the spiffe:// URI SAN of the peer's verified certificate.
 *
 * Every variable is "not found" (evaluates to the empty string) when it has no value; the
 * cases are listed at the functions below. None of them ever logs above debug level, because
 * "no value" is normal traffic, not an error. nginx caches the value of every variable the
 * configuration names per HTTP request or stream session, so the system calls below run at
 * most once per variable and request or session. The peer's SPIFFE ID is worked out once per
 * TLS connection and kept with it, as every request on a kept-alive connection asks again.
 *
 * Built dynamically, both modules share one object, which needs ngx_stream_module.so to be
 * loaded first. See scripts/build-ngx-mesh.sh.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_stream.h>

#include <linux/netfilter_ipv4.h>


/*
 * The IPv6 twin of SO_ORIGINAL_DST. Its header, <linux/netfilter_ipv6/ip6_tables.h>,
 * drags in the whole ip6tables ABI, and the value is fixed kernel ABI.
 */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST  80
#endif


/* What part of the original destination a variable shows; its "data" field. */
typedef enum {
    NGX_MESH_DST_FULL = 0,
    NGX_MESH_DST_ADDR,
    NGX_MESH_DST_PORT
} ngx_mesh_dst_part_e;


#define NGX_MESH_SPIFFE_SCHEME  "spiffe://"


static ngx_int_t ngx_mesh_original_dst(ngx_connection_t *c, ngx_pool_t *pool,
    ngx_variable_value_t *v, uintptr_t part);
static ngx_int_t ngx_mesh_peer_spiffe_id(ngx_connection_t *c, ngx_pool_t *pool,
    ngx_variable_value_t *v);
static ngx_int_t ngx_mesh_init_module(ngx_cycle_t *cycle);

#if (NGX_SSL)

/*
 * A peer's SPIFFE ID as worked out for a TLS connection, kept on its SSL object (the streams of
 * an HTTP/2 connection share it) and freed with it; len 0: the peer has none.
 */
typedef struct {
    size_t   len;
    u_char   data[1];
} ngx_mesh_spiffe_id_t;

static int  ngx_mesh_spiffe_id_index = -1;

static ngx_mesh_spiffe_id_t *ngx_mesh_spiffe_id_of(ngx_connection_t *c);
static void ngx_mesh_spiffe_id_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp);

#endif

static ngx_int_t ngx_http_mesh_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_mesh_original_dst_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mesh_peer_spiffe_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_stream_mesh_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_stream_mesh_original_dst_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_mesh_peer_spiffe_id_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);


/* ---- shared core: works on a client connection, knows nothing of http or stream ---- */

/*
 * True when a and b are the same IP address and port. An IPv4 address also equals its
 * IPv4-mapped IPv6 form, which is how a dual-stack (ipv6only=off) listener sees IPv4 peers.
 */
static ngx_uint_t
ngx_mesh_same_endpoint(struct sockaddr *a, struct sockaddr *b)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    if (a->sa_family == b->sa_family) {

        switch (a->sa_family) {

        case AF_INET:
            return ((struct sockaddr_in *) a)->sin_port
                       == ((struct sockaddr_in *) b)->sin_port
                   && ((struct sockaddr_in *) a)->sin_addr.s_addr
                       == ((struct sockaddr_in *) b)->sin_addr.s_addr;

        case AF_INET6:
            return ((struct sockaddr_in6 *) a)->sin6_port
                       == ((struct sockaddr_in6 *) b)->sin6_port
                   && ngx_memcmp(&((struct sockaddr_in6 *) a)->sin6_addr,
                                 &((struct sockaddr_in6 *) b)->sin6_addr,
                                 sizeof(struct in6_addr)) == 0;

        default:
            return 0;
        }
    }

    if (a->sa_family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *) a;
        sin = (struct sockaddr_in *) b;

    } else {
        sin6 = (struct sockaddr_in6 *) b;
        sin = (struct sockaddr_in *) a;
    }

    return sin->sin_family == AF_INET
           && sin6->sin6_family == AF_INET6
           && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
           && sin->sin_port == sin6->sin6_port
           && ngx_memcmp(&sin6->sin6_addr.s6_addr[12], &sin->sin_addr.s_addr, 4)
              == 0;
}


/*
 * Sets v to the connection's destination before NAT, or to "not found" when
 *   - the connection is not TCP over IP (UDP: the kernel keeps no original destination
 *     for it; unix sockets have none),
 *   - conntrack has no entry for the connection (getsockopt fails, e.g. ENOENT), or
 *   - the destination was not rewritten: conntrack then reports the connection's own
 *     local address, so a connection made straight to nginx's listener has no value.
 * Returns NGX_ERROR only when memory runs out.
 */
static ngx_int_t
ngx_mesh_original_dst(ngx_connection_t *c, ngx_pool_t *pool, ngx_variable_value_t *v,
    uintptr_t part)
{
    int                   level, optname;
    u_char               *p;
    socklen_t             len;
    ngx_sockaddr_t        dst;
    struct sockaddr_in6  *peer6;

    v->not_found = 1;

    if (c->type != SOCK_STREAM) {
        return NGX_OK;
    }

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        level = SOL_IP;
        optname = SO_ORIGINAL_DST;
        break;

    case AF_INET6:
        /* IPv4 peers of a dual-stack socket are tracked by IPv4 conntrack. */
        peer6 = (struct sockaddr_in6 *) c->sockaddr;

        if (IN6_IS_ADDR_V4MAPPED(&peer6->sin6_addr)) {
            level = SOL_IP;
            optname = SO_ORIGINAL_DST;

        } else {
            level = SOL_IPV6;
            optname = IP6T_SO_ORIGINAL_DST;
        }

        break;

    default:
        return NGX_OK;
    }

    ngx_memzero(&dst, sizeof(ngx_sockaddr_t));
    len = sizeof(ngx_sockaddr_t);

    if (getsockopt(c->fd, level, optname, &dst, &len) == -1) {
        ngx_log_debug0(NGX_LOG_DEBUG_CORE, c->log, ngx_socket_errno,
                       "mesh: no original destination (getsockopt)");
        return NGX_OK;
    }

    /* Fills in the real local address when nginx listens on a wildcard address. */
    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        return NGX_OK;
    }

    if (ngx_mesh_same_endpoint(&dst.sockaddr, c->local_sockaddr)) {
        ngx_log_debug0(NGX_LOG_DEBUG_CORE, c->log, 0,
                       "mesh: connection was not redirected");
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    switch (part) {

    case NGX_MESH_DST_ADDR:
        v->len = ngx_sock_ntop(&dst.sockaddr, len, p, NGX_SOCKADDR_STRLEN, 0);
        break;

    case NGX_MESH_DST_PORT:
        v->len = ngx_sprintf(p, "%ui", (ngx_uint_t) ngx_inet_get_port(&dst.sockaddr))
                 - p;
        break;

    default: /* NGX_MESH_DST_FULL */
        v->len = ngx_sock_ntop(&dst.sockaddr, len, p, NGX_SOCKADDR_STRLEN, 1);
        break;
    }

    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * Sets v to the peer's SPIFFE ID, or to "not found" when
 *   - the connection is not TLS, or the peer sent no certificate,
 *   - the peer's certificate did not verify (ssl_verify_client optional_no_ca lets such
 *     clients in; an unverified name must never authorise anything),
 *   - the certificate has no URI SAN starting with "spiffe://", or more than one (an
 *     X.509-SVID carries exactly one; two would make the identity ambiguous), or
 *   - that URI holds bytes outside printable ASCII (no valid SPIFFE ID does; rejecting
 *     them keeps control characters out of maps and logs).
 * Once the handshake is over, the answer is kept with the connection. The value is copied
 * into pool. Returns NGX_ERROR only when memory runs out.
 */
static ngx_int_t
ngx_mesh_peer_spiffe_id(ngx_connection_t *c, ngx_pool_t *pool, ngx_variable_value_t *v)
{
#if (NGX_SSL)
    u_char                *p;
    ngx_int_t              rc;
    ngx_uint_t             kept;
    ngx_mesh_spiffe_id_t  *id;
#endif

    v->not_found = 1;

#if (NGX_SSL)

    if (c->ssl == NULL || c->ssl->connection == NULL) {
        return NGX_OK;
    }

    kept = 1;
    id = (ngx_mesh_spiffe_id_index >= 0)
         ? SSL_get_ex_data(c->ssl->connection, ngx_mesh_spiffe_id_index)
         : NULL;

    if (id == NULL) {
        id = ngx_mesh_spiffe_id_of(c);
        if (id == NULL) {
            return NGX_ERROR;
        }

        kept = ngx_mesh_spiffe_id_index >= 0
               && SSL_is_init_finished(c->ssl->connection)
               && SSL_set_ex_data(c->ssl->connection, ngx_mesh_spiffe_id_index, id) == 1;
    }

    rc = NGX_OK;

    if (id->len > 0) {
        p = ngx_pnalloc(pool, id->len);

        if (p == NULL) {
            rc = NGX_ERROR;

        } else {
            ngx_memcpy(p, id->data, id->len);

            v->data = p;
            v->len = id->len;
            v->valid = 1;
            v->no_cacheable = 0;
            v->not_found = 0;
        }
    }

    if (!kept) {
        ngx_free(id);
    }

    return rc;

#else

    return NGX_OK;

#endif
}


#if (NGX_SSL)

/*
 * The peer's SPIFFE ID from its verified certificate (see above), in memory of its own;
 * NULL when memory runs out.
 */
static ngx_mesh_spiffe_id_t *
ngx_mesh_spiffe_id_of(ngx_connection_t *c)
{
    int                    i, n, len;
    X509                  *cert;
    const u_char          *data, *found;
    GENERAL_NAME          *name;
    GENERAL_NAMES         *names;
    ASN1_IA5STRING        *uri;
    ngx_mesh_spiffe_id_t  *id;
    static const char      scheme[] = NGX_MESH_SPIFFE_SCHEME;

    cert = NULL;
    names = NULL;
    found = NULL;
    len = 0;

    if (SSL_get_verify_result(c->ssl->connection) == X509_V_OK) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        cert = SSL_get1_peer_certificate(c->ssl->connection);
#else
        cert = SSL_get_peer_certificate(c->ssl->connection);
#endif
    }

    if (cert != NULL) {
        /* NULL too when the extension is absent, malformed or present twice. */
        names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    }

    n = (names != NULL) ? sk_GENERAL_NAME_num(names) : 0;

    for (i = 0; i < n; i++) {
        name = sk_GENERAL_NAME_value(names, i);

        if (name->type != GEN_URI) {
            continue;
        }

        uri = name->d.uniformResourceIdentifier;
        data = ASN1_STRING_get0_data(uri);

        if ((size_t) ASN1_STRING_length(uri) < sizeof(scheme) - 1
            || ngx_strncmp(data, scheme, sizeof(scheme) - 1) != 0)
        {
            continue;
        }

        if (found != NULL) {
            ngx_log_debug0(NGX_LOG_DEBUG_CORE, c->log, 0,
                           "mesh: peer certificate has several SPIFFE IDs");
            found = NULL;
            break;
        }

        found = data;
        len = ASN1_STRING_length(uri);
    }

    for (i = 0; found != NULL && i < len; i++) {
        if (found[i] <= 0x20 || found[i] >= 0x7f) {
            found = NULL;
        }
    }

    if (found == NULL) {
        len = 0;
    }

    id = ngx_alloc(offsetof(ngx_mesh_spiffe_id_t, data) + len, c->log);

    if (id != NULL) {
        id->len = len;

        if (len > 0) {
            ngx_memcpy(id->data, found, len);
        }
    }

    if (names != NULL) {
        GENERAL_NAMES_free(names);
    }

    if (cert != NULL) {
        X509_free(cert);
    }

    return id;
}


static void
ngx_mesh_spiffe_id_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
    (void) parent;
    (void) ad;
    (void) idx;
    (void) argl;
    (void) argp;

    ngx_free(ptr);
}

#endif


/* The index under which SSL objects keep their peer's SPIFFE ID, once per process. */
static ngx_int_t
ngx_mesh_init_module(ngx_cycle_t *cycle)
{
#if (NGX_SSL)
    if (ngx_mesh_spiffe_id_index < 0) {
        ngx_mesh_spiffe_id_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
                                                        ngx_mesh_spiffe_id_free);
        if (ngx_mesh_spiffe_id_index < 0) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "mesh: SSL_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }
#endif

    (void) cycle;

    return NGX_OK;
}


/* ---- http ---- */

static ngx_http_module_t  ngx_http_mesh_module_ctx = {
    ngx_http_mesh_add_variables,           /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_mesh_module = {
    NGX_MODULE_V1,
    &ngx_http_mesh_module_ctx,             /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_mesh_init_module,                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_mesh_variables[] = {

    { ngx_string("mesh_original_dst"), NULL,
      ngx_http_mesh_original_dst_variable, NGX_MESH_DST_FULL, 0, 0 },

    { ngx_string("mesh_original_dst_addr"), NULL,
      ngx_http_mesh_original_dst_variable, NGX_MESH_DST_ADDR, 0, 0 },

    { ngx_string("mesh_original_dst_port"), NULL,
      ngx_http_mesh_original_dst_variable, NGX_MESH_DST_PORT, 0, 0 },

    { ngx_string("mesh_peer_spiffe_id"), NULL,
      ngx_http_mesh_peer_spiffe_id_variable, 0, 0, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_mesh_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_mesh_variables; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* The client connection: for HTTP/2 streams it shares the real connection's socket. */
static ngx_int_t
ngx_http_mesh_original_dst_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    return ngx_mesh_original_dst(r->connection, r->pool, v, data);
}


static ngx_int_t
ngx_http_mesh_peer_spiffe_id_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    (void) data;

    return ngx_mesh_peer_spiffe_id(r->connection, r->pool, v);
}


/* ---- stream ---- */

static ngx_stream_module_t  ngx_stream_mesh_module_ctx = {
    ngx_stream_mesh_add_variables,         /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL                                   /* merge server configuration */
};


ngx_module_t  ngx_stream_mesh_module = {
    NGX_MODULE_V1,
    &ngx_stream_mesh_module_ctx,           /* module context */
    NULL,                                  /* module directives */
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


static ngx_stream_variable_t  ngx_stream_mesh_variables[] = {

    { ngx_string("mesh_original_dst"), NULL,
      ngx_stream_mesh_original_dst_variable, NGX_MESH_DST_FULL, 0, 0 },

    { ngx_string("mesh_original_dst_addr"), NULL,
      ngx_stream_mesh_original_dst_variable, NGX_MESH_DST_ADDR, 0, 0 },

    { ngx_string("mesh_original_dst_port"), NULL,
      ngx_stream_mesh_original_dst_variable, NGX_MESH_DST_PORT, 0, 0 },

    { ngx_string("mesh_peer_spiffe_id"), NULL,
      ngx_stream_mesh_peer_spiffe_id_variable, 0, 0, 0 },

      ngx_stream_null_variable
};


static ngx_int_t
ngx_stream_mesh_add_variables(ngx_conf_t *cf)
{
    ngx_stream_variable_t  *var, *v;

    for (v = ngx_stream_mesh_variables; v->name.len; v++) {
        var = ngx_stream_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* UDP sessions have no original destination; the core reports them as not found. */
static ngx_int_t
ngx_stream_mesh_original_dst_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    return ngx_mesh_original_dst(s->connection, s->connection->pool, v, data);
}


static ngx_int_t
ngx_stream_mesh_peer_spiffe_id_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    (void) data;

    return ngx_mesh_peer_spiffe_id(s->connection, s->connection->pool, v);
}
