/*
 * cli: the command line.  Besides a few actions (-c, --check-config,
 * --version, --help, --dynamic-config-yaml), every flag is a row of the
 * settings table (settings.h): the native settings and vllm_router's, with
 * vllm_router's meanings, so a deployment can switch by changing the binary
 * name.  cli_parse only collects the values; cli_apply checks and applies
 * them through the table, as the config file's; config_finish does the
 * cross-checks, naming the flag for what came from here (line 0).
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "settings.h"

#define CMDLINE "command line"
#define MAX_ROWS 160

enum {
    OPT_CHECK_CONFIG = 256, /* above every char, so optopt tells them apart */
    OPT_VERSION,
    OPT_DYNAMIC_CONFIG,
    OPT_ROW, /* OPT_ROW + i: settings_table[i] */
};

static const struct option action_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {"dynamic-config-yaml", required_argument, NULL, OPT_DYNAMIC_CONFIG},
    /* vllm_router's JSON spelling: JSON is YAML too */
    {"dynamic-config-json", required_argument, NULL, OPT_DYNAMIC_CONFIG},
};
#define NACTIONS (sizeof action_opts / sizeof action_opts[0])

/* The actions, then a flag per row the command line may set. */
static struct option long_opts[NACTIONS + MAX_ROWS + 1];
static char flag_names[MAX_ROWS][64];

static void build_options(void)
{
    size_t n = 0;
    if (long_opts[0].name)
        return;
    memcpy(long_opts, action_opts, sizeof action_opts);
    for (size_t i = 0; settings_table[i].key && i < MAX_ROWS; i++) {
        const struct setting *row = &settings_table[i];
        if (!(row->where & SETTING_FLAG))
            continue;
        snprintf(flag_names[i], sizeof flag_names[i], "%s", row->key);
        for (char *p = flag_names[i]; *p; p++)
            if (*p == '_')
                *p = '-';
        long_opts[NACTIONS + n++] = (struct option){
            flag_names[i], row->arg ? required_argument : no_argument, NULL,
            OPT_ROW + (int)i};
    }
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    SY_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *flag_name(int val)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == val)
            return o->name;
    return "?";
}

/* A row's value into o->flags: the last one given wins, except for a
 * repeatable flag, whose values make a list. */
static int add_value(struct cli_opts *o, const struct setting *row,
                     const char *arg, char *err, size_t errlen)
{
    const char *flag = flag_name(OPT_ROW + (int)(row - settings_table));
    struct cfg_node *v = cfg_node_new_scalar(arg ? arg : "true", CMDLINE, 0);

    if (arg && !*arg) {
        cfg_tree_free(v);
        return fail(err, errlen, "--%s: empty value", flag);
    }
    if (v && row->repeat) {
        struct cfg_node *list = (struct cfg_node *)cfg_map_get(o->flags, row->key);
        if (!list) {
            if (!(list = cfg_node_new(CFG_LIST, CMDLINE, 0)) ||
                cfg_map_set(o->flags, row->key, list) < 0) {
                cfg_tree_free(v);
                return fail(err, errlen, "--%s: out of memory", flag);
            }
        }
        if (list->n >= 16) {
            cfg_tree_free(v);
            return fail(err, errlen, "--%s: at most 16 values", flag);
        }
        return cfg_list_append(list, v) < 0
            ? fail(err, errlen, "--%s: out of memory", flag) : 0;
    }
    if (!v || cfg_map_set(o->flags, row->key, v) < 0)
        return fail(err, errlen, "--%s: out of memory", flag);
    return 0;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, char *err,
              size_t errlen)
{
    int c, help = 0, version = 0, check = 0;

    build_options();
    memset(o, 0, sizeof *o);
    o->action = CLI_RUN;
    if (!(o->flags = cfg_node_new(CFG_MAP, CMDLINE, 0)))
        return fail(err, errlen, "out of memory");

    opterr = 0; /* our own messages, one line each */
    optind = 0; /* full reset, so tests can parse again */
    /* '+': no permuting of argv, stop at the first operand; ':': report a
     * missing value apart from an unknown flag. */
    while ((c = getopt_long(argc, argv, "+:c:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h': help = 1; break;
        case OPT_VERSION: version = 1; break;
        case OPT_CHECK_CONFIG: check = 1; break;
        case 'c':
        case OPT_DYNAMIC_CONFIG:
            if (!*optarg)
                return fail(err, errlen, "--%s: empty value", flag_name(c));
            if (c == 'c')
                o->config_path = optarg;
            else
                o->dynamic_config = optarg;
            break;
        case ':':
            if (optopt == 'c' && optind > 0 && argv[optind - 1][1] == 'c')
                return fail(err, errlen, "-c: missing value (a config file)");
            return fail(err, errlen, "--%s: missing value", flag_name(optopt));
        case '?': {
            const char *arg = optind > 0 ? argv[optind - 1] : "";
            /* optopt is set for "--help=x" (a value given to a flag that
             * takes none) and for an unknown short flag. */
            if (optopt && strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
                return fail(err, errlen, "--%s: takes no value",
                            flag_name(optopt));
            if (optopt)
                return fail(err, errlen, "unknown flag '-%c'", optopt);
            return fail(err, errlen, "unknown or ambiguous flag '%s'", arg);
        }
        default:
            if (add_value(o, &settings_table[c - OPT_ROW], optarg, err,
                          errlen) < 0)
                return -1;
            break;
        }
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
    if (help)
        o->action = CLI_HELP;
    else if (version)
        o->action = CLI_VERSION;
    else if (check)
        o->action = CLI_CHECK_CONFIG;
    return 0;
}

int cli_given(const struct cli_opts *o, const char *key)
{
    return o->flags && cfg_map_get(o->flags, key) != NULL;
}

int cli_apply(const struct cli_opts *o, struct sy_cfg *cfg, char *err,
              size_t errlen)
{
    struct setter st = {.cfg = cfg, .map = o->flags, .src = SETTING_FLAG,
                        .file = CMDLINE, .err = err, .errlen = errlen};
    if (!o->flags)
        return 0;
    return settings_apply(&st);
}

void cli_free(struct cli_opts *o)
{
    cfg_tree_free(o->flags);
    o->flags = NULL;
}

/* "      --flag ARG" then the help, its lines under each other, and the
 * default where it fits (lines within 79 columns). */
static void usage_row(FILE *out, const struct setting *row, const char *flag)
{
    char left[128];
    const char *h = row->help;
    size_t col;
    int n = snprintf(left, sizeof left, "      --%s%s%s", flag,
                     row->arg ? " " : "", row->arg ? row->arg : "");
    fputs(left, out);
    if (n > 31)
        fprintf(out, "\n%32s", "");
    else
        fprintf(out, "%*s", 32 - n, "");
    for (;;) {
        size_t len = strcspn(h, "\n");
        fwrite(h, 1, len, out);
        col = 32 + len;
        if (!h[len])
            break;
        fprintf(out, "\n%32s", "");
        h += len + 1;
    }
    if (row->def && *row->def) {
        if (col + strlen(row->def) + 11 > 79)
            fprintf(out, "\n%32s(default %s)", "", row->def);
        else
            fprintf(out, " (default %s)", row->def);
    }
    fputc('\n', out);
}

void cli_usage(FILE *out, const char *argv0)
{
    int vllm = 0;
    build_options();
    fprintf(out,
"Usage: %s [-c FILE] [--check-config] [OPTIONS]\n"
"An HTTP router for OpenAI-compatible LLM servers, with per-model fallback.\n"
"\n"
"  -c, --config FILE             YAML config file (default: the installed\n"
"                                switchyard.yaml, if it exists)\n"
"      --check-config            check the config and the command line, then\n"
"                                exit\n"
"      --version                 print the version and exit\n"
"  -h, --help                    print this help and exit\n"
"\n"
"Settings (a flag overrides the config file's setting of the same name):\n",
            argv0 ? argv0 : "switchyard");
    for (size_t i = 0; settings_table[i].key && i < MAX_ROWS; i++) {
        const struct setting *row = &settings_table[i];
        if (!(row->where & SETTING_FLAG) || !row->help)
            continue;
        if (!vllm && (row->where & SETTING_DYNAMIC)) {
            vllm = 1;
            fprintf(out, "\n"
"Models and backends, as vllm_router's flags (--static-backends replaces\n"
"the config file's models and aliases):\n");
        }
        usage_row(out, row, flag_names[i]);
    }
    fprintf(out,
"      --dynamic-config-yaml FILE\n"
"                                production-stack's router config (flat keys\n"
"                                as these flags, or static_models as a map\n"
"                                with fallback_model); its keys override the\n"
"                                flags and the config file\n"
"\n"
"Values: seconds as 10, 2.5, 500ms, 5s, 2m or 1h; sizes as 65536, 64KiB or\n"
"32MiB.  Both --flag VALUE and --flag=VALUE work.  Errors exit with status 2.\n");
}
