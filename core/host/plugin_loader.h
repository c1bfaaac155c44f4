/*
 * plugin_loader: dlopen a plugin by name and check its descriptor before any
 * of its code runs (magic, ABI major/minor, size, kind, hooks).
 */
#ifndef SY_PLUGIN_LOADER_H
#define SY_PLUGIN_LOADER_H

#include <stddef.h>
#include <switchyard/plugin.h>

struct loaded_plugin {
    char *name;              /* the descriptor's name: NAME of NAME.so */
    char *path;
    void *dl;
    /* The descriptor as this core knows it: a copy of the plugin's, with
     * the fields its ABI minor or size lacks read as NULL/0, so the core
     * calls every hook of any 1.x plugin the same way. */
    const struct sy_plugin *desc;
    struct sy_plugin copy;
};

/* The smallest descriptor the loader accepts: ABI 1.0's (and 1.1's, whose
 * hooks took two of its reserved slots), up to the end of `reserved`. */
#define SY_PLUGIN_SIZE_1_0 offsetof(struct sy_plugin, attempt_failed)

/* A plugin named in the config: NAME (looked up in the search list), or a
 * path to a shared object ("/opt/p/NAME.so", containing a '/').  Writes
 * the plugin's own name (NAME) to buf; -1 when a path does not end in
 * ".so" or the name is too long. */
int plugin_name_of(const char *configured, char *buf, size_t len);

/* Load a plugin and check that it is a plugin of `kind`: `name` as
 * configured (see plugin_name_of), searched as DIR/NAME.so in each
 * directory of `search`, a ':'-separated list, first found wins.  On error
 * returns -1 with "plugin NAME: PATH: reason" in err (every directory
 * searched, when none has it). */
int plugin_load(const char *search, const char *name, enum sy_plugin_kind kind,
                struct loaded_plugin **out, char *err, size_t errlen);
void plugin_unload(struct loaded_plugin *p);
/* May a loaded plugin serve in a chain of `kind` too (ABI 1.2: one plugin,
 * several kinds, when it has their hooks)?  -1 with the reason in err. */
int plugin_check_kind(const struct loaded_plugin *p, enum sy_plugin_kind kind, char *err,
                      size_t errlen);
const char *plugin_kind_name(enum sy_plugin_kind kind);

#endif
