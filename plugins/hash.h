/*
 * hash.h - the hashing shared by the session and prefixaware plugins.
 *
 * Header-only (static inline) so each plugin .so stays self-contained.  The
 * results depend only on the bytes hashed, never on the machine's byte order
 * or the process, so two router replicas (even on different CPUs) agree on
 * every choice made from them.
 */
#ifndef SY_PLUGINS_HASH_H
#define SY_PLUGINS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SY_HASH_SEED 0xcbf29ce484222325ull /* FNV-1a's offset basis */

/* MurmurHash3's 64-bit finaliser: a bijection in which every input bit flips
 * each output bit with probability close to 1/2 (what rendezvous hashing
 * needs to spread keys evenly). */
static inline uint64_t sy_hash_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/*
 * Feed bytes into a running state h (start from SY_HASH_SEED).  Eight bytes
 * at a time, read little-endian whatever the CPU, so long prompts hash fast;
 * each step is a bijection of the state for a given word, and the high half
 * is folded down so later words reach every bit.  The tail goes byte by
 * byte, FNV-1a style.  Feeding the same pieces always gives the same state,
 * which is what makes cumulative chunk hashes possible.
 */
static inline uint64_t sy_hash_update(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len >= 8) {
        uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
                     (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        h = (h ^ *p++) * 0x100000001b3ull; /* FNV-1a's prime */
    return h;
}

/* The final hash of a state, well mixed. */
static inline uint64_t sy_hash_final(uint64_t h)
{
    return sy_hash_mix(h);
}

static inline uint64_t sy_hash_bytes(const void *data, size_t len)
{
    return sy_hash_final(sy_hash_update(SY_HASH_SEED, data, len));
}

static inline uint64_t sy_hash_str(const char *s)
{
    return sy_hash_bytes(s, strlen(s));
}

/* Rendezvous (highest random weight) score of a key for a node: each node
 * draws an independent-looking number per key; the highest wins.  The node
 * hash goes through the mixer once more so that key ^ node has no structure
 * shared between nodes. */
static inline uint64_t sy_hash_score(uint64_t key, uint64_t node)
{
    return sy_hash_mix(key ^ sy_hash_mix(node + 0x9e3779b97f4a7c15ull));
}

#endif
