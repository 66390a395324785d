/*
 * ngx_mesh_slots.h: an upstream's slots and members, for http's and stream's round-robin peers
 * alike (their fields have the same names). ngx_mesh_members.c includes it once per protocol,
 * with these defined:
 *
 *   NGX_MESH_SLOTS(name)   the name of each function: ngx_http_mesh_slots_##name, ...
 *   NGX_MESH_PEERS_T       ngx_http_upstream_rr_peers_t or ngx_stream_upstream_rr_peers_t
 *   NGX_MESH_PEER_T        ngx_http_upstream_rr_peer_t or ngx_stream_upstream_rr_peer_t
 *   NGX_MESH_SLOTS_SSL     NGX_HTTP_SSL or NGX_STREAM_SSL: whether peers hold TLS sessions
 *
 * The plan (which slot each address takes, whose state it keeps) is ngx_mesh_slots_plan's.
 */


/* Records the slots of one peers list, as the configuration linked them. */
static ngx_int_t
NGX_MESH_SLOTS(record_set)(ngx_conf_t *cf, ngx_mesh_slots_t *set, NGX_MESH_PEERS_T *peers)
{
    ngx_uint_t        i;
    NGX_MESH_PEER_T  *peer;

    set->nslots = 0;

    for (peer = peers->peer; peer; peer = peer->next) {
        set->nslots++;
    }

    set->peer = ngx_pcalloc(cf->pool, sizeof(void *) * set->nslots);
    set->occupant = ngx_pcalloc(cf->pool, sizeof(ngx_mesh_addr_t *) * set->nslots);
    set->old = ngx_pcalloc(cf->pool, sizeof(ngx_mesh_addr_t *) * set->nslots);
    set->from = ngx_pcalloc(cf->pool, sizeof(ngx_uint_t) * set->nslots);

    if (set->peer == NULL || set->occupant == NULL || set->old == NULL || set->from == NULL) {
        return NGX_ERROR;
    }

    for (peer = peers->peer, i = 0; peer; peer = peer->next, i++) {
        set->peer[i] = peer;
    }

    set->live = set->nslots;

    return NGX_OK;
}


/* Records an upstream's primary and backup slots, once nginx made its peers. */
static ngx_int_t
NGX_MESH_SLOTS(record)(ngx_conf_t *cf, ngx_mesh_slots_conf_t *scf, NGX_MESH_PEERS_T *peers)
{
    if (NGX_MESH_SLOTS(record_set)(cf, &scf->primary, peers) != NGX_OK) {
        return NGX_ERROR;
    }

    if (peers->next == NULL) {
        return NGX_OK;
    }

    scf->backup_peers = peers->next;

    return NGX_MESH_SLOTS(record_set)(cf, &scf->backup, peers->next);
}


static void
NGX_MESH_SLOTS(apply)(ngx_mesh_slots_t *set, NGX_MESH_PEERS_T *peers,
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


/* Puts the members the file gives the upstream name into its slots, when the file changed. */
static void
NGX_MESH_SLOTS(put)(ngx_mesh_slots_conf_t *scf, NGX_MESH_PEERS_T *peers, ngx_str_t *name,
    ngx_log_t *log)
{
    NGX_MESH_PEERS_T             *backup;
    ngx_mesh_members_upstream_t  *u;

    if (scf->version == ngx_mesh_members_version) {
        return;
    }

    scf->version = ngx_mesh_members_version;

    u = ngx_mesh_members_upstream(name);
    if (u == NULL) {
        return;
    }

    ngx_mesh_slots_log_overflow(log, name, u->primary, scf->primary.nslots);
    NGX_MESH_SLOTS(apply)(&scf->primary, peers, u->addr, u->primary);

    backup = scf->backup_peers;

    if (backup != NULL) {
        ngx_mesh_slots_log_overflow(log, name, u->backup, scf->backup.nslots);
        NGX_MESH_SLOTS(apply)(&scf->backup, backup, u->addr + u->primary, u->backup);
        peers->next = (scf->backup.live > 0) ? backup : NULL;
        backup->single = 0;
    }

    /* as nginx: one server alone is "single" (never failed over) unless it has backups */
    peers->single = (scf->primary.live == 1 && peers->next == NULL);
}


/*
 * Makes the peers' numbers every slot (widen), or puts back what they were: nginx sizes the
 * "tried" bits of the peer data it makes for a request by them, and a request still in flight
 * when the members grow must never index past its bits.
 */
static void
NGX_MESH_SLOTS(widen)(ngx_mesh_slots_conf_t *scf, NGX_MESH_PEERS_T *peers, ngx_uint_t *saved,
    ngx_uint_t widen)
{
    NGX_MESH_PEERS_T  *backup = scf->backup_peers;

    if (widen) {
        saved[0] = peers->number;
        peers->number = scf->primary.nslots;

        if (backup != NULL) {
            saved[1] = backup->number;
            backup->number = scf->backup.nslots;
        }

        return;
    }

    peers->number = saved[0];

    if (backup != NULL) {
        backup->number = saved[1];
    }
}
