/*
 * least.h: the least-loaded choice shared by routing plugins (header only,
 * like hash.h: plugins link nothing but libc).
 */
#ifndef SY_PLUGINS_LEAST_H
#define SY_PLUGINS_LEAST_H

#include <stddef.h>
#include <switchyard/plugin.h>

/* The candidate with the fewest requests in flight (n > 0).  Ties are broken
 * by `turn`, the caller's rotating counter, so none is favoured.  The counts
 * are live (other workers move them): when the turn's pick has changed by
 * the second look, the first least loaded is taken. */
static inline size_t least_loaded_pick(const struct sy_host_api *host,
                                       const sy_backend *const *c, size_t n,
                                       unsigned turn)
{
    unsigned least = 0;
    size_t ties = 0, first = 0, k;

    for (size_t i = 0; i < n; i++) {
        unsigned load = host->backend_inflight(c[i]);
        if (ties == 0 || load < least) {
            least = load;
            ties = 1;
            first = i;
        } else if (load == least) {
            ties++;
        }
    }
    if (ties <= 1)
        return first;
    k = turn % ties;
    for (size_t i = first; i < n; i++)
        if (host->backend_inflight(c[i]) == least && k-- == 0)
            return i;
    return first;
}

#endif
