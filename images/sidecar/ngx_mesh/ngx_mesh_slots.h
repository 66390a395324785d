/*
 * ngx_mesh_slots.h: puts a new membership into the peers of one upstream, for http's and
 * stream's round-robin peers alike (their fields have the same names). ngx_mesh_members.c
 * includes it once per protocol, with these defined:
 *
 *   NGX_MESH_SLOTS_APPLY   the function's name
 *   NGX_MESH_PEERS_T       ngx_http_upstream_rr_peers_t or ngx_stream_upstream_rr_peers_t
 *   NGX_MESH_PEER_T        ngx_http_upstream_rr_peer_t or ngx_stream_upstream_rr_peer_t
 *   NGX_MESH_SLOTS_SSL     NGX_HTTP_SSL or NGX_STREAM_SSL: whether peers hold TLS sessions
 *
 * The plan (which slot each address takes, whose state it keeps) is ngx_mesh_slots_plan's.
 */

static void
NGX_MESH_SLOTS_APPLY(ngx_mesh_slots_t *set, NGX_MESH_PEERS_T *peers,
    ngx_mesh_addr_t **want, ngx_uint_t n)
{
    ngx_uint_t        i, j, k;
    NGX_MESH_PEER_T  **slot, *peer, *from;

    k = ngx_mesh_slots_plan(set, want, n);
    slot = (NGX_MESH_PEER_T **) set->peer;

    for (i = 0; i < k; i++) {
        j = set->from[i];

        if (j == i) {
            continue;
        }

        peer = slot[i];

#if (NGX_MESH_SLOTS_SSL)
        /* the session of the address that leaves this slot */
        if (peer->ssl_session != NULL) {
            ngx_ssl_free_session(peer->ssl_session);
            peer->ssl_session = NULL;
        }
#endif

        if (j == NGX_MESH_SLOT_FRESH) {
            peer->fails = 0;
            peer->accessed = 0;
            peer->checked = 0;
            peer->current_weight = 0;
            peer->effective_weight = 1;

        } else {
            from = slot[j];
            peer->fails = from->fails;
            peer->accessed = from->accessed;
            peer->checked = from->checked;
            peer->current_weight = from->current_weight;
            peer->effective_weight = from->effective_weight;
#if (NGX_MESH_SLOTS_SSL)
            peer->ssl_session = from->ssl_session;
            from->ssl_session = NULL;
#endif
        }

        /* a new address never reuses the old one's buffers: a connection in flight keeps them */
        peer->sockaddr = set->occupant[i]->sockaddr;
        peer->socklen = set->occupant[i]->socklen;
        peer->name = set->occupant[i]->name;
        peer->server = set->occupant[i]->name;
    }

    for (i = 0; i < set->nslots; i++) {
        peer = slot[i];

        if (i < k) {
            peer->weight = 1;
            peer->down = 0;
            peer->next = (i + 1 < k) ? slot[i + 1] : NULL;
            continue;
        }

#if (NGX_MESH_SLOTS_SSL)
        if (peer->ssl_session != NULL) {
            ngx_ssl_free_session(peer->ssl_session);
            peer->ssl_session = NULL;
        }
#endif

        peer->fails = 0;
        peer->down = 1;
        peer->next = NULL;
    }

    /* no members: one slot, down, so every method finds no live peer (and random no zero) */
    peers->number = (k == 0) ? 1 : k;
    peers->total_weight = peers->number;
    peers->tries = k;
    peers->single = (k == 1);
    peers->weighted = 0;
    set->live = k;
}
