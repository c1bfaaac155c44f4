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

/* Does the descriptor have the hooks of `kind`? */
static int has_hooks(const struct sy_plugin *d, enum sy_plugin_kind kind)
{
    switch (kind) {
    case SY_KIND_ROUTING: return d->route != NULL;
    case SY_KIND_FALLBACK: return d->fallback != NULL;
    case SY_KIND_HEALTH: return d->abi_minor >= 1 && (d->start != NULL || d->attempt_done != NULL);
    default: return 0;
    }
}

/* Can the descriptor serve in a chain of `kind`: its own kind, or (since
 * 1.2) another whose hooks it has; and those hooks there. */
static int check_kind(const struct sy_plugin *d, enum sy_plugin_kind kind, char *why, size_t len)
{
    /* discovery plugins publish from start(): it is theirs alone */
    if (kind == SY_KIND_DISCOVERY &&
        (d->kind != (uint32_t)kind || d->abi_minor < 3 || d->start == NULL)) {
        if (d->kind != (uint32_t)kind)
            snprintf(why, len, "is a %s plugin, configured as a discovery plugin",
                     plugin_kind_name((enum sy_plugin_kind)d->kind));
        else
            snprintf(why, len, "discovery plugin without start() (needs plugin ABI 1.3)");
        return -1;
    }
    if (d->kind != (uint32_t)kind && !(d->abi_minor >= 2 && has_hooks(d, kind))) {
        snprintf(why, len, "is a %s plugin, configured as a %s plugin",
                 plugin_kind_name((enum sy_plugin_kind)d->kind), plugin_kind_name(kind));
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
    if (kind == SY_KIND_HEALTH && !has_hooks(d, kind)) {
        snprintf(why, len, "health plugin without start() or attempt_done() (needs plugin ABI 1.1)");
        return -1;
    }
    return 0;
}

int plugin_check_kind(const struct loaded_plugin *p, enum sy_plugin_kind kind, char *err,
                      size_t errlen)
{
    char why[256];

    if (check_kind(p->desc, kind, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "plugin %s: %s: %s", p->name, p->path, why);
    return -1;
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
    /* A descriptor of ABI 1.x is at least as large as the 1.0 one (1.1
     * took two of its reserved slots); later minors append fields, which
     * an older plugin's descriptor lacks and the copy reads as NULL. */
    if (d->size < SY_PLUGIN_SIZE_1_0) {
        snprintf(why, len, "descriptor size %u is smaller than ABI %u.%u allows",
                 (unsigned)d->size, d->abi_major, d->abi_minor);
        return -1;
    }
    if (d->name == NULL || strcmp(d->name, name) != 0) {
        snprintf(why, len, "descriptor names itself '%.100s', expected '%.100s'",
                 d->name ? d->name : "(null)", name);
        return -1;
    }
    if (d->create == NULL || d->destroy == NULL) {
        snprintf(why, len, "descriptor lacks create() or destroy()");
        return -1;
    }
    return check_kind(d, kind, why, len);
}

int plugin_name_of(const char *configured, char *buf, size_t len)
{
    const char *base = strrchr(configured, '/');
    size_t n;

    if (base == NULL) {
        n = strlen(configured);
    } else {
        base++;
        n = strlen(base);
        if (n <= 3 || strcmp(base + n - 3, ".so") != 0)
            return -1;
        n -= 3;
        configured = base;
    }
    if (n == 0 || n >= len)
        return -1;
    memcpy(buf, configured, n);
    buf[n] = '\0';
    return 0;
}

/* Where the plugin is: the configured path, or the first DIR/NAME.so of
 * the search list.  -1 with the reason in err. */
static int plugin_find(const char *search, const char *configured, const char *name,
                       char *path, size_t len, char *err, size_t errlen)
{
    struct stat st;
    size_t used;

    if (strchr(configured, '/') != NULL) {
        if (stat(configured, &st) != 0) {
            snprintf(err, errlen, "plugin %s: %s: %s", name, configured, strerror(errno));
            return -1;
        }
        snprintf(path, len, "%s", configured);
        return 0;
    }
    const char *sep = " ";
    used = (size_t)snprintf(err, errlen, "plugin %s: not found (searched", name);
    for (const char *dir = search; dir != NULL && *dir != '\0';) {
        const char *colon = strchr(dir, ':');
        size_t dlen = colon ? (size_t)(colon - dir) : strlen(dir);
        if (dlen > 0) {
            snprintf(path, len, "%.*s/%s.so", (int)dlen, dir, name);
            if (stat(path, &st) == 0)
                return 0;
            if (used < errlen)
                used += (size_t)snprintf(err + used, errlen - used, "%s%s: %s", sep, path,
                                         strerror(errno));
            sep = "; ";
        }
        dir = colon ? colon + 1 : NULL;
    }
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return -1;
}

/* The descriptor as this core reads it (see struct loaded_plugin). */
static void copy_descriptor(struct loaded_plugin *p, const struct sy_plugin *d)
{
    size_t n = d->size < sizeof p->copy ? d->size : sizeof p->copy;

    memset(&p->copy, 0, sizeof p->copy);
    memcpy(&p->copy, d, n);
    /* hooks of a minor newer than the plugin's: reserved slots it kept
     * NULL by the rules, read as NULL whatever they hold */
    if (d->abi_minor < 1) {
        p->copy.start = NULL;
        p->copy.attempt_done = NULL;
    }
    if (d->abi_minor < 2) {
        p->copy.attempt_failed = NULL;
        p->copy.outcome = NULL;
        p->copy.request_done = NULL;
        p->copy.worker_start = NULL;
    }
    p->desc = &p->copy;
}

int plugin_load(const char *search, const char *configured, enum sy_plugin_kind kind,
                struct loaded_plugin **out, char *err, size_t errlen)
{
    struct loaded_plugin *p = NULL;
    const struct sy_plugin *d;
    char why[256] = "";
    char path[4096], name[256];

    *out = NULL;
    if (plugin_name_of(configured, name, sizeof name) != 0) {
        snprintf(err, errlen, "plugin %s: a plugin path must name a NAME.so file", configured);
        return -1;
    }
    if (plugin_find(search, configured, name, path, sizeof path, err, errlen) != 0)
        return -1;
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
    d = dlsym(p->dl, SY_PLUGIN_SYMBOL);
    if (d == NULL) {
        snprintf(err, errlen, "plugin %s: %s: no '%s' symbol (not a switchyard plugin, or built for another ABI major)",
                 name, path, SY_PLUGIN_SYMBOL);
        goto fail;
    }
    if (check_descriptor(d, name, kind, why, sizeof why) != 0) {
        snprintf(err, errlen, "plugin %s: %s: %s", name, path, why);
        goto fail;
    }
    copy_descriptor(p, d);
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
