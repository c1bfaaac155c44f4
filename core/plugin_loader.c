#include "plugin_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *plugin_kind_name(enum sy_plugin_kind kind)
{
    switch (kind) {
    case SY_KIND_ROUTING: return "routing";
    case SY_KIND_HEALTH: return "health";
    case SY_KIND_FALLBACK: return "fallback";
    case SY_KIND_DISCOVERY: return "discovery";
    }
    return "unknown";
}

/* The checks a descriptor must pass; only data is read, no plugin code. */
static int check_descriptor(const struct sy_plugin *d, const char *name,
                            enum sy_plugin_kind kind, char *why, size_t len)
{
    if (d->magic != SY_PLUGIN_MAGIC) {
        snprintf(why, len, "bad magic 0x%08x (not a switchyard plugin)",
                 (unsigned)d->magic);
        return -1;
    }
    if (d->abi_major != SY_ABI_MAJOR) {
        snprintf(why, len, "built for plugin ABI %u.%u, this switchyard has ABI %d.%d",
                 d->abi_major, d->abi_minor, SY_ABI_MAJOR, SY_ABI_MINOR);
        return -1;
    }
    if (d->abi_minor > SY_ABI_MINOR) {
        snprintf(why, len, "built for plugin ABI %u.%u, newer than this switchyard's %d.%d; upgrade switchyard",
                 d->abi_major, d->abi_minor, SY_ABI_MAJOR, SY_ABI_MINOR);
        return -1;
    }
    /* A descriptor of ABI 1.x is at least as large as the 1.0 one, whose
     * hooks end where 1.1's start() took a reserved slot. */
    if (d->size < sizeof(struct sy_plugin)) {
        snprintf(why, len, "descriptor size %u is smaller than ABI %u.%u allows",
                 (unsigned)d->size, d->abi_major, d->abi_minor);
        return -1;
    }
    if (d->kind != (uint32_t)kind) {
        snprintf(why, len, "is a %s plugin, configured as a %s plugin",
                 plugin_kind_name((enum sy_plugin_kind)d->kind), plugin_kind_name(kind));
        return -1;
    }
    if (d->name == NULL || strcmp(d->name, name) != 0) {
        snprintf(why, len, "descriptor names itself '%s', expected '%s'",
                 d->name ? d->name : "(null)", name);
        return -1;
    }
    if (d->create == NULL || d->destroy == NULL) {
        snprintf(why, len, "descriptor lacks create() or destroy()");
        return -1;
    }
    if (kind == SY_KIND_ROUTING && d->route == NULL) {
        snprintf(why, len, "routing plugin without a route() hook");
        return -1;
    }
    if (kind == SY_KIND_FALLBACK && d->fallback == NULL) {
        snprintf(why, len, "fallback plugin without a fallback() hook");
        return -1;
    }
    if (kind == SY_KIND_HEALTH &&
        (d->abi_minor < 1 || (d->start == NULL && d->attempt_done == NULL))) {
        snprintf(why, len, "health plugin without start() or attempt_done() (needs plugin ABI 1.1)");
        return -1;
    }
    if (kind == SY_KIND_DISCOVERY) {
        snprintf(why, len, "%s plugins are not supported by plugin ABI %d.%d",
                 plugin_kind_name(kind), SY_ABI_MAJOR, SY_ABI_MINOR);
        return -1;
    }
    return 0;
}

int plugin_load(const char *dir, const char *name, enum sy_plugin_kind kind,
                struct loaded_plugin **out, char *err, size_t errlen)
{
    struct loaded_plugin *p = NULL;
    char why[256] = "";
    char path[4096];
    struct stat st;

    *out = NULL;
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "plugin %s: %s: %s", name, path, strerror(errno));
        return -1;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL)
        goto oom;
    p->name = strdup(name);
    p->path = strdup(path);
    if (p->name == NULL || p->path == NULL)
        goto oom;
    /* RTLD_LOCAL: plugins never see each other's symbols.  Constructors of
     * the object do run here; the SDK asks plugins not to have any. */
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        snprintf(err, errlen, "plugin %s: %s: cannot load: %s", name, path, dlerror());
        goto fail;
    }
    dlerror();
    p->desc = dlsym(p->dl, SY_PLUGIN_SYMBOL);
    if (p->desc == NULL) {
        snprintf(err, errlen, "plugin %s: %s: no '%s' symbol (not a switchyard plugin, or built for another ABI major)",
                 name, path, SY_PLUGIN_SYMBOL);
        goto fail;
    }
    if (check_descriptor(p->desc, name, kind, why, sizeof why) != 0) {
        snprintf(err, errlen, "plugin %s: %s: %s", name, path, why);
        goto fail;
    }
    *out = p;
    return 0;
oom:
    snprintf(err, errlen, "plugin %s: out of memory", name);
fail:
    plugin_unload(p);
    return -1;
}

void plugin_unload(struct loaded_plugin *p)
{
    if (p == NULL)
        return;
    if (p->dl != NULL)
        dlclose(p->dl);
    free(p->name);
    free(p->path);
    free(p);
}
