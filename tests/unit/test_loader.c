/* The plugin loader: descriptor checks happen before any plugin code runs
 * (the bad test plugins abort() in every function). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_loader.h"
#include "unit.h"

static int load(const char *name, enum sy_plugin_kind kind, char *err, size_t len)
{
    struct loaded_plugin *p = NULL;
    int rc = plugin_load(TEST_PLUGIN_DIR, name, kind, &p, err, len);
    if (rc == 0) {
        CU_ASSERT_PTR_NOT_NULL(p);
        plugin_unload(p);
    } else {
        CU_ASSERT_PTR_NULL(p);
    }
    return rc;
}

static void test_good_plugin_loads(void)
{
    char err[512] = "";
    struct loaded_plugin *p = NULL;
    CU_ASSERT_EQUAL(plugin_load(TEST_PLUGIN_DIR, "good", SY_KIND_ROUTING, &p, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->desc->name, "good");
    CU_ASSERT_PTR_NOT_NULL(strstr(p->path, "/good.so"));
    plugin_unload(p);
}

static void test_missing_file(void)
{
    char err[512] = "";
    CU_ASSERT_EQUAL(load("does_not_exist", SY_KIND_ROUTING, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does_not_exist.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
}

static void test_bad_magic(void)
{
    char err[512] = "";
    CU_ASSERT_EQUAL(load("bad_magic", SY_KIND_ROUTING, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad_magic.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));
}

static void test_wrong_abi_major(void)
{
    char err[512] = "";
    CU_ASSERT_EQUAL(load("wrong_abi", SY_KIND_ROUTING, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "wrong_abi.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plugin ABI 2.0"));
}

static void test_newer_minor(void)
{
    char err[512] = "";
    CU_ASSERT_EQUAL(load("newer_minor", SY_KIND_ROUTING, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer than this switchyard"));
}

static void test_no_symbol(void)
{
    char err[512] = "";
    CU_ASSERT_EQUAL(load("no_symbol", SY_KIND_ROUTING, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sy_plugin_v1"));
}

static void test_wrong_kind(void)
{
    char err[512] = "";
    CU_ASSERT_EQUAL(load("good", SY_KIND_FALLBACK, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a routing plugin, configured as a fallback plugin"));
}

static void test_not_a_shared_object(void)
{
    char dir[] = "/tmp/sy-loader-XXXXXX", path[256], err[512] = "";
    struct loaded_plugin *p = NULL;
    FILE *f;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/junk.so", dir);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(plugin_load(dir, "junk", SY_KIND_ROUTING, &p, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot load"));
    unlink(path);
    rmdir(dir);
}

/* A ':'-separated search list: the first directory that has NAME.so wins;
 * when none has it, the error names every place searched. */
static void test_search_list(void)
{
    char err[1024] = "";
    struct loaded_plugin *p = NULL;

    CU_ASSERT_EQUAL(plugin_load("/nonexistent-a:" TEST_PLUGIN_DIR ":/nonexistent-b", "good",
                                SY_KIND_ROUTING, &p, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(strncmp(p->path, TEST_PLUGIN_DIR "/good.so", strlen(TEST_PLUGIN_DIR) + 8), 0);
    plugin_unload(p);
    p = NULL;
    CU_ASSERT_EQUAL(plugin_load("/nonexistent-a:/nonexistent-b", "good", SY_KIND_ROUTING, &p,
                                err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not found"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent-a/good.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent-b/good.so"));
}

/* A plugin by absolute path: no search, its name from the file name. */
static void test_by_path(void)
{
    char err[1024] = "";
    struct loaded_plugin *p = NULL;

    CU_ASSERT_EQUAL(plugin_load("/nonexistent", TEST_PLUGIN_DIR "/good.so", SY_KIND_ROUTING,
                                &p, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->name, "good");
    plugin_unload(p);
    p = NULL;
    CU_ASSERT_EQUAL(plugin_load(NULL, TEST_PLUGIN_DIR "/good.txt", SY_KIND_ROUTING, &p, err,
                                sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NAME.so"));
    CU_ASSERT_EQUAL(plugin_load(NULL, "/nonexistent/x/good.so", SY_KIND_ROUTING, &p, err,
                                sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
}

static void test_name_of(void)
{
    char n[16];
    CU_ASSERT_EQUAL(plugin_name_of("roundrobin", n, sizeof n), 0);
    CU_ASSERT_STRING_EQUAL(n, "roundrobin");
    CU_ASSERT_EQUAL(plugin_name_of("/opt/p/drain_file.so", n, sizeof n), 0);
    CU_ASSERT_STRING_EQUAL(n, "drain_file");
    CU_ASSERT_EQUAL(plugin_name_of("/opt/p/.so", n, sizeof n), -1);
    CU_ASSERT_EQUAL(plugin_name_of("/opt/p/x", n, sizeof n), -1);
    CU_ASSERT_EQUAL(plugin_name_of("a_name_far_too_long_for_it", n, sizeof n), -1);
}

/* The core's copy of a descriptor: hooks the plugin's ABI minor lacks read
 * as NULL (the good test plugin is a 1.x routing plugin). */
static void test_descriptor_copy(void)
{
    char err[512] = "";
    struct loaded_plugin *p = NULL;

    CU_ASSERT_EQUAL_FATAL(plugin_load(TEST_PLUGIN_DIR, "good", SY_KIND_ROUTING, &p, err,
                                      sizeof err), 0);
    CU_ASSERT_PTR_EQUAL(p->desc, &p->copy);
    CU_ASSERT_PTR_NOT_NULL(p->desc->route);
    CU_ASSERT_PTR_NULL(p->desc->fallback);
    CU_ASSERT_EQUAL(p->desc->kind, SY_KIND_ROUTING);
    plugin_unload(p);
}

void register_loader_tests(void)
{
    UNIT_SUITE("plugin_loader",
               UNIT_TEST(test_good_plugin_loads), UNIT_TEST(test_missing_file),
               UNIT_TEST(test_bad_magic), UNIT_TEST(test_wrong_abi_major),
               UNIT_TEST(test_newer_minor), UNIT_TEST(test_no_symbol),
               UNIT_TEST(test_wrong_kind), UNIT_TEST(test_not_a_shared_object),
               UNIT_TEST(test_search_list), UNIT_TEST(test_by_path), UNIT_TEST(test_name_of),
               UNIT_TEST(test_descriptor_copy));
}
