/*
 * cfg_tree: a YAML document as a small tree that remembers where each node
 * was written, so every config error can name file:line.  It is also what a
 * plugin sees as its opaque `sy_config` section.
 */
#ifndef SY_CFG_TREE_H
#define SY_CFG_TREE_H

#include <stddef.h>

enum cfg_kind { CFG_SCALAR, CFG_MAP, CFG_LIST };

struct cfg_node {
    enum cfg_kind kind;
    int line;            /* 1-based line of the node in `file` */
    const char *file;    /* owned by the root (cfg_tree_free frees it) */
    char *scalar;        /* CFG_SCALAR: the text */
    size_t n;            /* CFG_MAP: entries; CFG_LIST: items */
    char **keys;         /* CFG_MAP: keys[i] */
    int *key_lines;      /* CFG_MAP: line of keys[i] */
    struct cfg_node **vals; /* CFG_MAP: value of keys[i]; CFG_LIST: items */
};

/* Parse a YAML file / string whose top level is a map.  On error returns -1
 * and writes "file:line: reason" to err. */
int cfg_tree_load_file(const char *path, struct cfg_node **out, char *err,
                       size_t errlen);
int cfg_tree_parse(const char *text, size_t len, const char *name,
                   struct cfg_node **out, char *err, size_t errlen);
void cfg_tree_free(struct cfg_node *root);

/* Build nodes by hand (for command-line settings).  `file` is not copied. */
struct cfg_node *cfg_node_new(enum cfg_kind kind, const char *file, int line);
struct cfg_node *cfg_node_new_scalar(const char *text, const char *file,
                                     int line);
/* Append to a map (takes ownership of val, also on failure, when it is
 * freed; replaces an existing key).  cfg_list_append likewise. */
int cfg_map_set(struct cfg_node *map, const char *key, struct cfg_node *val);
int cfg_list_append(struct cfg_node *list, struct cfg_node *item);

/* A deep copy (file names are shared, not copied); NULL when out of memory. */
struct cfg_node *cfg_node_clone(const struct cfg_node *n);

/* Lookups; NULL when absent. */
const struct cfg_node *cfg_map_get(const struct cfg_node *map,
                                   const char *key);
/* Line of `key` in map, or the map's own line when absent. */
int cfg_map_key_line(const struct cfg_node *map, const char *key);

/* An empty map that stands for "no section given".  Never freed. */
const struct cfg_node *cfg_empty_map(void);

/* "250ms", "5s", "1.5", "2m", "1h" -> seconds.  -1 on bad input. */
int cfg_parse_seconds(const char *text, double *out);
/* "1024", "64KiB", "32MiB", "1GiB", "10MB", "1k" -> bytes.  -1 on bad input.
 * k/m/g and Ki/KiB.. are powers of 1024 (as nginx), KB/MB/GB of 1000. */
int cfg_parse_bytes(const char *text, size_t *out);
/* true/false, yes/no, on/off, 1/0 -> 1/0.  -1 on bad input. */
int cfg_parse_bool(const char *text, int *out);

#endif
