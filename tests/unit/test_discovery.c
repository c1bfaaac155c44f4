/* discovery: how what discovery plugins publish becomes the setup's models
 * and backends (setup_build), and what a reload carries over. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "backend_health.h"
#include "config.h"
#include "discovery.h"
#include "setup.h"
#include "unit.h"

/* A set built from "url models(comma) ready" triples. */
struct fixture {
    struct discovered_backend v[8];
    char *models[8][4];
    struct discovered_set set;
};

static char *model_label[] = { "model=big" };

static void add(struct fixture *f, const char *url, const char *models, int ready)
{
    struct discovered_backend *b = &f->v[f->set.n];
    char *copy = strdup(models), *save = NULL;
    b->url = (char *)url;
    b->models = f->models[f->set.n];
    b->nmodels = 0;
    for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save))
        b->models[b->nmodels++] = strdup(m);
    free(copy);
    b->ready = ready;
    f->set.v = f->v;
    f->set.n++;
}

static void fixture_free(struct fixture *f)
{
    for (size_t i = 0; i < f->set.n; i++)
        for (size_t j = 0; j < f->v[i].nmodels; j++)
            free(f->v[i].models[j]);
}

static struct setup *build(const char *yaml, const struct discovered_set *set)
{
    char err[512];
    struct sy_cfg *cfg = NULL;
    struct setup *s = NULL;
    if (config_load_string(yaml, "d.yaml", &cfg, err, sizeof err) != 0 ||
        config_finish(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "\nconfig: %s\n", err);
        config_free(cfg);
        return NULL;
    }
    if (setup_build(cfg, BUILT_PLUGIN_DIR, 1, set, &s, err, sizeof err) != 0) {
        fprintf(stderr, "\nsetup: %s\n", err);
        return NULL;
    }
    return s;
}

static int has_backend(const struct model *m, const char *url)
{
    for (size_t i = 0; i < m->nbackends; i++)
        if (strcmp(m->backends[i]->url, url) == 0)
            return 1;
    return 0;
}

/* Discovered backends join the config's models by name; names only
 * discovery knows become chat models; a model written without backends
 * keeps its settings; not ready is the discovery source's flag. */
static void test_merge(void)
{
    struct fixture f = {0};
    add(&f, "http://10.0.0.1:8000", "big,lora-a", 1);
    f.v[0].labels = model_label;
    f.v[0].nlabels = 1;
    add(&f, "http://10.0.0.2:8000", "big", 0);
    add(&f, "http://10.0.0.3:8000", "small", 1);
    struct setup *s = build("discovery: [k8s]\n"
                            "models:\n"
                            "  big: {fallback_model: small, type: completion}\n"
                            "  static: {backends: [http://s:1]}\n"
                            "aliases: {b: big}\n", &f.set);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->nmodels, 4); /* big, static, small, lora-a */
    CU_ASSERT_EQUAL(s->nbackends, 4);
    struct model *big = setup_find_model(s, "big");
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(big->nbackends, 2);
    CU_ASSERT_STRING_EQUAL(big->cfg->fallback_model, "small");
    CU_ASSERT_STRING_EQUAL(big->cfg->type, "completion");
    CU_ASSERT_PTR_EQUAL(setup_find_model(s, "b"), big);
    struct model *lora = setup_find_model(s, "lora-a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lora);
    CU_ASSERT_STRING_EQUAL(lora->cfg->type, "chat");
    CU_ASSERT_TRUE(has_backend(lora, "http://10.0.0.1:8000"));
    /* one backend per URL, shared by its models */
    struct model *small = setup_find_model(s, "small");
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    CU_ASSERT_EQUAL(small->nbackends, 1);
    CU_ASSERT_PTR_NOT_NULL(setup_find_model(s, "static"));
    struct backend *b1 = setup_find_backend(s, "http://10.0.0.1:8000");
    struct backend *b2 = setup_find_backend(s, "http://10.0.0.2:8000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    CU_ASSERT_TRUE(b1->discovered);
    CU_ASSERT_FALSE(setup_find_backend(s, "http://s:1")->discovered);
    CU_ASSERT_STRING_EQUAL(b1->models_label, "big,lora-a");
    /* its labels kept (roles, later) */
    CU_ASSERT_PTR_NOT_NULL_FATAL(b1->labels);
    CU_ASSERT_STRING_EQUAL(b1->labels[0], "model=big");
    CU_ASSERT_PTR_NULL(b1->labels[1]);
    CU_ASSERT_PTR_NULL(b2->labels);
    CU_ASSERT_FALSE(backend_health_flagged_by(b1, HEALTH_SOURCE_DISCOVERY));
    CU_ASSERT_TRUE(backend_health_flagged_by(b2, HEALTH_SOURCE_DISCOVERY));
    CU_ASSERT_FALSE(backend_usable(b2, setup_now_ms()));
    setup_destroy(s);
    fixture_free(&f);
}

/* A model name discovery finds that is an alias in the config: the alias
 * wins, the backend serves nothing under it.  No models at all: a setup
 * with none, which answers 404 until discovery publishes. */
static void test_alias_and_empty(void)
{
    struct fixture f = {0};
    add(&f, "http://10.0.0.9:8000", "b", 1);
    struct setup *s = build("discovery: [k8s]\nmodels:\n  big: {}\naliases: {b: big}\n",
                            &f.set);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->nmodels, 1);
    CU_ASSERT_EQUAL(setup_find_model(s, "b")->nbackends, 0);
    setup_destroy(s);
    fixture_free(&f);

    struct discovered_set none = {NULL, 0};
    s = build("discovery: [k8s]\n", &none);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->nmodels, 0);
    CU_ASSERT_EQUAL(s->nbackends, 0);
    CU_ASSERT_PTR_NULL(setup_find_model(s, "anything"));
    setup_destroy(s);
}

/* Across rebuilds: discovery's flag follows the newest publish, never the
 * old setup's; the other sources' flags carry over by URL. */
static void test_carry_over(void)
{
    struct fixture f1 = {0}, f2 = {0};
    add(&f1, "http://10.0.0.1:8000", "m", 0);
    add(&f1, "http://10.0.0.2:8000", "m", 1);
    add(&f2, "http://10.0.0.1:8000", "m", 1);
    add(&f2, "http://10.0.0.2:8000", "m", 1);
    struct setup *a = build("discovery: [k8s]\n", &f1.set);
    struct setup *b = build("discovery: [k8s]\n", &f2.set);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* the operator drained .2 in the old setup */
    backend_flag_set(setup_find_backend(a, "http://10.0.0.2:8000"), HEALTH_SOURCE_OPERATOR, 1,
                     "drained");
    setup_carry_over(b, a);
    struct backend *n1 = setup_find_backend(b, "http://10.0.0.1:8000");
    struct backend *n2 = setup_find_backend(b, "http://10.0.0.2:8000");
    CU_ASSERT_FALSE(backend_health_flagged_by(n1, HEALTH_SOURCE_DISCOVERY));
    CU_ASSERT_TRUE(backend_usable(n1, setup_now_ms()));
    CU_ASSERT_TRUE(backend_flag_held(n2, HEALTH_SOURCE_OPERATOR));
    CU_ASSERT_FALSE(backend_usable(n2, setup_now_ms()));
    setup_destroy(a);
    setup_destroy(b);
    fixture_free(&f1);
    fixture_free(&f2);
}

void register_discovery_tests(void)
{
    UNIT_SUITE("discovery", UNIT_TEST(test_merge), UNIT_TEST(test_alias_and_empty),
               UNIT_TEST(test_carry_over));
}
