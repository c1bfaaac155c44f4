/*
 * switchyard: an HTTP router for OpenAI-compatible LLM inference servers.
 * main: command line and config, plugins, workers, signals.  Exit status 2
 * for anything wrong with what the operator gave us, 1 for runtime failures.
 */
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "server.h"
#include "setup.h"

#define DEFAULT_CONFIG SY_SYSCONF_DIR "/switchyard.yaml"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    LOG_INFO("signal %d: stopping", (int)sig);
    event_base_loopbreak(arg);
}

/* The config from the file (if any) and the flags, validated. */
static int load_config(const struct cli_opts *o, struct sy_cfg **out, char *err,
                       size_t errlen)
{
    struct sy_cfg *cfg = NULL;
    const char *path = o->config_path;

    if (path == NULL && o->static_backends == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    if (path != NULL) {
        if (config_load_file(path, &cfg, err, errlen) != 0)
            return -1;
    } else if ((cfg = config_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cli_apply(o, cfg, err, errlen) != 0 || config_finish(cfg, err, errlen) != 0) {
        config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

int main(int argc, char **argv)
{
    struct cli_opts opts;
    struct sy_cfg *cfg = NULL;
    struct setup *setup = NULL;
    struct server *srv = NULL;
    struct event_base *main_base = NULL;
    struct event *sigs[2] = { NULL, NULL };
    char err[1024] = "";
    int status = 1, nworkers;
    const char *plugin_dir;

    if (cli_parse(argc, argv, &opts, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s (see --help)\n", err);
        return 2;
    }
    if (opts.action == CLI_HELP) {
        cli_usage(stdout, argv[0]);
        return 0;
    }
    if (opts.action == CLI_VERSION) {
        printf("switchyard %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, SY_ABI_MAJOR, SY_ABI_MINOR);
        return 0;
    }
    if (load_config(&opts, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        return 2;
    }
    log_level = cfg->log_level;
    nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers < 1)
        nworkers = 1;
    plugin_dir = cfg->plugin_dir ? cfg->plugin_dir : SY_PLUGIN_DIR;
    char *host = strdup(cfg->host);
    int port = cfg->port;
    if (host == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || evthread_use_pthreads() != 0) {
        fprintf(stderr, "switchyard: cannot initialise libcurl or libevent threads\n");
        free(host);
        config_free(cfg);
        return 1;
    }
    if (setup_create(cfg, plugin_dir, nworkers, &setup, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        status = 2;
        goto out;
    }
    if (opts.action == CLI_CHECK_CONFIG) {
        printf("switchyard: configuration OK (%zu models, %zu backends)\n",
               setup->nmodels, setup->nbackends);
        status = 0;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    main_base = event_base_new();
    if (main_base == NULL) {
        fprintf(stderr, "switchyard: cannot create the event loop\n");
        goto out;
    }
    sigs[0] = evsignal_new(main_base, SIGTERM, on_signal, main_base);
    sigs[1] = evsignal_new(main_base, SIGINT, on_signal, main_base);
    if (sigs[0] == NULL || sigs[1] == NULL || evsignal_add(sigs[0], NULL) != 0 ||
        evsignal_add(sigs[1], NULL) != 0) {
        fprintf(stderr, "switchyard: cannot install signal handlers\n");
        goto out;
    }
    if (server_start(setup, host, port, nworkers, &srv, err, sizeof err) != 0 ||
        control_start(setup, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        goto out;
    }
    LOG_INFO("switchyard %s listening on %s:%d with %d worker%s, %zu models, %zu backends",
             PACKAGE_VERSION, host, port, nworkers, nworkers == 1 ? "" : "s",
             setup->nmodels, setup->nbackends);
    event_base_dispatch(main_base);
    control_stop(setup);
    server_stop(srv);
    srv = NULL;
    LOG_INFO("stopped");
    status = 0;
out:
    if (setup != NULL)
        control_stop(setup);
    server_stop(srv);
    for (int i = 0; i < 2; i++)
        if (sigs[i] != NULL)
            event_free(sigs[i]);
    if (main_base != NULL)
        event_base_free(main_base);
    setup_destroy(setup);
    free(host);
    curl_global_cleanup();
    libevent_global_shutdown();
    return status;
}
