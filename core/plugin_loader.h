/*
 * plugin_loader: dlopen a plugin by name and check its descriptor before any
 * of its code runs (magic, ABI major/minor, size, kind, hooks).
 */
#ifndef SY_PLUGIN_LOADER_H
#define SY_PLUGIN_LOADER_H

#include <stddef.h>
#include <switchyard/plugin.h>

struct loaded_plugin {
    char *name;
    char *path;
    void *dl;
    const struct sy_plugin *desc;
};

/* Load DIR/NAME.so and check that it is a plugin of `kind`.  On error
 * returns -1 with "PATH: reason" in err. */
int plugin_load(const char *dir, const char *name, enum sy_plugin_kind kind,
                struct loaded_plugin **out, char *err, size_t errlen);
void plugin_unload(struct loaded_plugin *p);
const char *plugin_kind_name(enum sy_plugin_kind kind);

#endif
