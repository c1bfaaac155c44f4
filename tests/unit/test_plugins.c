/* The shipped plugins, loaded by the real loader against the real host API
 * of a setup built from a config string. */
#include <string.h>

#include "config.h"
#include "setup.h"
#include "unit.h"

static const char *ask(struct setup *s, size_t slot_index, const char *model)
{
    const struct plugin_slot *slot = &s->fallback.slots[slot_index];
    const char *tried[] = { model };
    struct sy_fallback_query q = { .size = sizeof q, .model = model,
                                   .reason = SY_FALLBACK_EXHAUSTED, .tried = tried, .ntried = 1 };
    const char *next = NULL;
    int rc = slot->plugin->desc->fallback(plugin_slot_instance(slot, 0), &q, &next);
    return rc == SY_OK ? next : NULL;
}

static const char *models_yaml =
    "fallback: [model_map, default_model]\n"
    "plugin_config:\n"
    "  default_model: {model: cloud}\n"
    "models:\n"
    "  a: {backends: [http://127.0.0.1:1], fallback_model: b}\n"
    "  b: {backends: [http://127.0.0.1:2], fallback_model: c}\n"
    "  c: {backends: [http://127.0.0.1:3]}\n"
    "  cloud: {backends: [https://gw.example.com/v1]}\n";

static void test_model_map_follows_config(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(models_yaml, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->fallback.n, 2);
    CU_ASSERT_STRING_EQUAL(ask(s, 0, "a"), "b");
    CU_ASSERT_STRING_EQUAL(ask(s, 0, "b"), "c");
    CU_ASSERT_PTR_NULL(ask(s, 0, "c"));        /* declines: no fallback_model */
    CU_ASSERT_STRING_EQUAL(ask(s, 1, "c"), "cloud");
    CU_ASSERT_PTR_NULL(ask(s, 1, "cloud"));    /* never itself */
    /* shared plugins have one instance, per-worker ones one per worker */
    CU_ASSERT_EQUAL(s->fallback.slots[0].ninst, 1);
    CU_ASSERT_EQUAL(s->routing.slots[0].ninst, 2);
    setup_destroy(s);
}

static void test_model_map_section_overrides(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(
        "fallback: model_map\n"
        "plugin_config:\n"
        "  model_map:\n"
        "    map: {a: c}\n"
        "models:\n"
        "  a: {backends: [http://127.0.0.1:1], fallback_model: b}\n"
        "  b: {backends: [http://127.0.0.1:2]}\n"
        "  c: {backends: [http://127.0.0.1:3]}\n", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(ask(s, 0, "a"), "c");
    setup_destroy(s);
}

static void test_plugin_config_errors_name_the_line(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(
        "fallback: default_model\n"
        "plugin_config:\n"
        "  default_model:\n"
        "    model: nowhere\n"
        "models:\n"
        "  a: {backends: [http://127.0.0.1:1]}\n", err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'nowhere' is not a configured model"));

    s = unit_make_setup("fallback: default_model\nmodels:\n  a: {backends: [http://127.0.0.1:1]}\n",
                   err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "a model name is required"));
}

static void test_roundrobin_rotates(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(models_yaml, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const struct plugin_slot *slot = &s->routing.slots[0];
    CU_ASSERT_STRING_EQUAL(slot->plugin->name, "roundrobin");
    const sy_backend *c[3] = { (const sy_backend *)&s->backends[0],
                               (const sy_backend *)&s->backends[1],
                               (const sy_backend *)&s->backends[2] };
    int seen[3] = { 0, 0, 0 };
    for (int i = 0; i < 30; i++) {
        size_t pick = 99;
        CU_ASSERT_EQUAL(slot->plugin->desc->route(plugin_slot_instance(slot, 0), NULL, c, 3, &pick), SY_OK);
        CU_ASSERT_TRUE_FATAL(pick < 3);
        seen[pick]++;
    }
    CU_ASSERT_EQUAL(seen[0], 10);
    CU_ASSERT_EQUAL(seen[1], 10);
    CU_ASSERT_EQUAL(seen[2], 10);
    setup_destroy(s);
}

static void test_aliases_resolve(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(
        "models:\n"
        "  llama: {backends: [http://127.0.0.1:1, http://127.0.0.1:2], aliases: [big]}\n"
        "aliases: {gpt-4: llama}\n", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(setup_find_model(s, "big"));
    CU_ASSERT_PTR_EQUAL(setup_find_model(s, "gpt-4"), setup_find_model(s, "llama"));
    CU_ASSERT_PTR_NULL(setup_find_model(s, "nope"));
    CU_ASSERT_EQUAL(setup_find_model(s, "llama")->nbackends, 2);
    setup_destroy(s);
}

static void test_missing_api_key_env_is_an_error(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(
        "models:\n  m: {backends: [https://gw.example.com/v1], api_key_env: SY_TEST_SURELY_UNSET}\n",
        err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "SY_TEST_SURELY_UNSET is not set"));
}

void register_plugin_tests(void)
{
    UNIT_SUITE("plugins",
               UNIT_TEST(test_model_map_follows_config), UNIT_TEST(test_model_map_section_overrides),
               UNIT_TEST(test_plugin_config_errors_name_the_line), UNIT_TEST(test_roundrobin_rotates),
               UNIT_TEST(test_aliases_resolve), UNIT_TEST(test_missing_api_key_env_is_an_error));
}
