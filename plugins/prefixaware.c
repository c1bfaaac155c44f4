/*
 * prefixaware: a request whose prompt starts like one seen before goes to
 * the backend that served that one, so the engine's prefix (KV) cache hits.
 *
 *   routing: prefixaware
 *   plugin_config:
 *     prefixaware: {chunk_size: 128, max_entries: 100000, min_match_chunks: 1}
 *
 * (min_match_length: N, vllm_router's --prefix-min-match-length, is the
 * same threshold in bytes: N / chunk_size chunks, rounded up, at least 1.)
 *
 * The prompt (the host's request_prompt: "prompt", or the text of
 * "messages") is cut into chunk_size-byte chunks; only whole chunks count,
 * as in the engines' block caches.  Chunk i is known by a hash of the
 * prompt's first (i+1) chunks, so equal hashes mean equal prefixes.  A
 * table remembers, for each such prefix hash, the backend (by a hash of its
 * URL) that last served a prompt with it.  Routing looks for the longest
 * known prefix whose backend is among the candidates; if it covers at least
 * min_match_chunks chunks that backend gets the request, otherwise the
 * least loaded candidate does (ties in turn).  Either way the chosen backend
 * is then recorded for every chunk of the prompt.
 *
 * The table holds at most max_entries prefixes, allocated once at create();
 * the least recently used is forgotten first.  A prompt's chunks are
 * touched from its last to its first, so a shared prefix (a system prompt)
 * outlives the conversations that extend it.
 *
 * One instance for every worker (SY_PLUGIN_F_SHARED), so all workers learn
 * from each other; a mutex guards the table.  Hashing and reading the
 * candidates happen outside it; inside there are only table lookups and
 * updates, about two per chunk of the prompt.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#include "hash.h"
#include "least.h"

#define NIL UINT32_MAX
#define MAX_ENTRIES 100000000LL /* 3.2 GB of table: surely a typo beyond */
#define MAX_CHUNK (1LL << 20)
#define STACK_KEYS 64  /* chunks hashed without malloc */
#define STACK_CANDS 32 /* candidates hashed without malloc */

struct entry {
    uint64_t key;       /* hash of a prompt prefix of whole chunks */
    uint64_t backend;   /* hash of the URL of the backend that last served it */
    uint32_t newer;     /* LRU list neighbours; NIL at the ends */
    uint32_t older;
    uint32_t next;      /* next entry of the same bucket */
};

struct prefixaware {
    const struct sy_host_api *host;
    size_t chunk;
    size_t min_match;
    uint32_t max;       /* entries */
    uint32_t mask;      /* buckets - 1 */
    atomic_uint turn;   /* ties of the least-loaded choice */

    pthread_mutex_t lock; /* guards everything below */
    struct entry *e;
    uint32_t *bucket;   /* first entry of each bucket, or NIL */
    uint32_t used;      /* entries taken so far; then the oldest is reused */
    uint32_t newest, oldest;
};

/* --- the table (lock held) --- */

static uint32_t find(const struct prefixaware *p, uint64_t key)
{
    uint32_t i = p->bucket[key & p->mask];
    while (i != NIL && p->e[i].key != key)
        i = p->e[i].next;
    return i;
}

static void lru_unlink(struct prefixaware *p, uint32_t i)
{
    struct entry *x = &p->e[i];
    if (x->newer != NIL)
        p->e[x->newer].older = x->older;
    else
        p->newest = x->older;
    if (x->older != NIL)
        p->e[x->older].newer = x->newer;
    else
        p->oldest = x->newer;
}

static void lru_push(struct prefixaware *p, uint32_t i)
{
    p->e[i].newer = NIL;
    p->e[i].older = p->newest;
    if (p->newest != NIL)
        p->e[p->newest].newer = i;
    else
        p->oldest = i;
    p->newest = i;
}

static void bucket_remove(struct prefixaware *p, uint32_t i)
{
    uint32_t *link = &p->bucket[p->e[i].key & p->mask];
    while (*link != i)
        link = &p->e[*link].next;
    *link = p->e[i].next;
}

/* Remember key -> backend as the most recent entry. */
static void remember(struct prefixaware *p, uint64_t key, uint64_t backend)
{
    uint32_t i = find(p, key);

    if (i != NIL) {
        lru_unlink(p, i);
    } else {
        if (p->used < p->max) {
            i = p->used++;
        } else {
            i = p->oldest; /* forget the least recently used */
            lru_unlink(p, i);
            bucket_remove(p, i);
        }
        p->e[i].key = key;
        p->e[i].next = p->bucket[key & p->mask];
        p->bucket[key & p->mask] = i;
    }
    p->e[i].backend = backend;
    lru_push(p, i);
}

/* --- config --- */

static int get_count(const struct sy_host_api *host, const sy_config *cfg, const char *key,
                     long long lo, long long hi, long long *out, char *err, size_t errlen)
{
    char where[256];
    long long v = *out;
    int rc = host->config_int(cfg, key, &v);

    if (rc == SY_DECLINED)
        return 0;
    if (rc == SY_OK && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    host->config_where(cfg, key, where, sizeof where);
    snprintf(err, errlen, "%s: prefixaware.%s: expected a whole number from %lld to %lld",
             where, key, lo, hi);
    return -1;
}

static int pa_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    static const char *const keys[] = { "chunk_size", "max_entries", "min_match_chunks",
                                        "min_match_length", NULL };
    long long chunk = 128, max = 100000, min_match = 1, min_length = 0;
    struct prefixaware *p;
    const char *name;
    const sy_config *v;
    char where[256];
    size_t nbuckets = 1;

    for (size_t i = 0; host->config_entry(cfg, i, &name, &v) == SY_OK; i++) {
        size_t k = 0;
        while (keys[k] != NULL && strcmp(keys[k], name) != 0)
            k++;
        if (keys[k] == NULL) {
            host->config_where(cfg, name, where, sizeof where);
            snprintf(err, errlen, "%s: prefixaware.%s: unknown key (expected chunk_size, "
                     "max_entries, min_match_chunks, min_match_length)", where, name);
            return SY_ERROR;
        }
    }
    if (get_count(host, cfg, "chunk_size", 1, MAX_CHUNK, &chunk, err, errlen) < 0 ||
        get_count(host, cfg, "max_entries", 1, MAX_ENTRIES, &max, err, errlen) < 0 ||
        get_count(host, cfg, "min_match_chunks", 1, MAX_ENTRIES, &min_match, err, errlen) < 0 ||
        get_count(host, cfg, "min_match_length", 0, (long long)MAX_ENTRIES * MAX_CHUNK,
                  &min_length, err, errlen) < 0)
        return SY_ERROR;
    if (min_length > 0) /* whole chunks only count, as in the engines' caches */
        min_match = (min_length + chunk - 1) / chunk;
    if (host->size < offsetof(struct sy_host_api, request_prompt) + sizeof host->request_prompt ||
        host->request_prompt == NULL) {
        snprintf(err, errlen, "the host has no request_prompt() (needs plugin ABI 1.1)");
        return SY_ERROR;
    }
    while (nbuckets < (size_t)max) /* load factor at most 1 */
        nbuckets *= 2;
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    p->e = malloc((size_t)max * sizeof *p->e);
    p->bucket = malloc(nbuckets * sizeof *p->bucket);
    if (p->e == NULL || p->bucket == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot allocate a table of %lld entries", max);
        free(p->e);
        free(p->bucket);
        free(p);
        return SY_ERROR;
    }
    memset(p->bucket, 0xff, nbuckets * sizeof *p->bucket); /* all NIL */
    p->host = host;
    p->chunk = (size_t)chunk;
    p->min_match = (size_t)min_match;
    p->max = (uint32_t)max;
    p->mask = (uint32_t)(nbuckets - 1);
    p->newest = p->oldest = NIL;
    atomic_init(&p->turn, 0);
    *inst = p;
    return SY_OK;
}

static void pa_destroy(void *inst)
{
    struct prefixaware *p = inst;
    pthread_mutex_destroy(&p->lock);
    free(p->e);
    free(p->bucket);
    free(p);
}

/* --- routing --- */

/* The least loaded candidate; ties in turn. */
static size_t least_loaded(struct prefixaware *p, const sy_backend *const *c, size_t n)
{
    return least_loaded_pick(p->host, c, n,
                             atomic_fetch_add_explicit(&p->turn, 1, memory_order_relaxed));
}

/* Pick among the candidates (URL hashes cand[]) for a prompt whose chunk
 * keys are keys[], and record the pick for all of them. */
static size_t consult(struct prefixaware *p, const uint64_t *keys, size_t nchunks,
                      const uint64_t *cand, size_t n, size_t fallback)
{
    size_t depth = 0, matched = 0, pick;

    pthread_mutex_lock(&p->lock);
    /* Longest known prefix served by a candidate.  A prefix's chunks are
     * recorded together and the shorter ones are kept fresher, so the first
     * unknown chunk ends the search. */
    for (size_t i = 0; i < nchunks; i++) {
        uint32_t e = find(p, keys[i]);
        if (e == NIL)
            break;
        for (size_t c = 0; c < n; c++) {
            if (cand[c] == p->e[e].backend) {
                depth = i + 1;
                matched = c;
                break;
            }
        }
    }
    pick = depth >= p->min_match ? matched : fallback;
    for (size_t i = nchunks; i-- > 0;)
        remember(p, keys[i], cand[pick]);
    pthread_mutex_unlock(&p->lock);
    return pick;
}

static int pa_route(void *inst, const sy_request *req,
                    const sy_backend *const *candidates, size_t n, size_t *pick)
{
    struct prefixaware *p = inst;
    uint64_t keys_buf[STACK_KEYS], cand_buf[STACK_CANDS], *keys = keys_buf, *cand = cand_buf;
    const char *text = NULL;
    size_t len = 0, nchunks = 0;

    if (n == 0)
        return SY_DECLINED;
    *pick = least_loaded(p, candidates, n);
    if (req != NULL && p->host->request_prompt(req, &text, &len) == SY_OK)
        nchunks = len / p->chunk;
    if (nchunks == 0)
        return SY_OK;
    if (nchunks > p->max) /* more would only evict the prompt's own start */
        nchunks = p->max;
    if (nchunks > STACK_KEYS)
        keys = malloc(nchunks * sizeof *keys);
    if (n > STACK_CANDS)
        cand = malloc(n * sizeof *cand);
    if (keys != NULL && cand != NULL) {
        /* the hashing, outside the lock */
        uint64_t h = SY_HASH_SEED;
        for (size_t i = 0; i < nchunks; i++) {
            h = sy_hash_update(h, text + i * p->chunk, p->chunk);
            keys[i] = sy_hash_final(h);
        }
        for (size_t i = 0; i < n; i++)
            cand[i] = sy_hash_str(p->host->backend_url(candidates[i]));
        *pick = consult(p, keys, nchunks, cand, n, *pick);
    } /* else out of memory: the least loaded, unrecorded */
    if (keys != keys_buf)
        free(keys);
    if (cand != cand_buf)
        free(cand);
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .flags = SY_PLUGIN_F_SHARED,
    .name = "prefixaware",
    .version = "1.0",
    .description = "the backend that served the longest known prompt prefix",
    .create = pa_create,
    .destroy = pa_destroy,
    .route = pa_route,
};
