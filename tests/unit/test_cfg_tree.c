/* cfg_tree: YAML into line-numbered trees, and the value parsers. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_tree.h"
#include "unit.h"

static struct cfg_node *parse_ok(const char *text)
{
    char err[256] = "";
    struct cfg_node *root = NULL;
    int rc = cfg_tree_parse(text, strlen(text), "t.yaml", &root, err,
                            sizeof err);
    if (rc != 0)
        fprintf(stderr, "\nunexpected parse error: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return root;
}

/* Parsing fails and the message contains `want`. */
static void parse_fails(const char *text, const char *want)
{
    char err[256] = "";
    struct cfg_node *root = NULL;
    int rc = cfg_tree_parse(text, strlen(text), "t.yaml", &root, err,
                            sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NULL(root);
    if (!strstr(err, want))
        fprintf(stderr, "\nerror '%s' lacks '%s'\n", err, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    if (rc == 0)
        cfg_tree_free(root);
}

static void test_tree_shapes_and_lines(void)
{
    struct cfg_node *r = parse_ok("# comment\n"
                                  "name: switchyard\n"
                                  "list:\n"
                                  "  - one\n"
                                  "  - {k: v, n: 2}\n"
                                  "map:\n"
                                  "  inner: [a, b]\n"
                                  "quoted: \"x: y\"\n");
    if (!r)
        return;
    CU_ASSERT_EQUAL(r->kind, CFG_MAP);
    CU_ASSERT_STRING_EQUAL(r->file, "t.yaml");
    CU_ASSERT_EQUAL(r->line, 2);
    CU_ASSERT_EQUAL(r->n, 4);
    CU_ASSERT_STRING_EQUAL(r->keys[0], "name");
    CU_ASSERT_EQUAL(r->key_lines[0], 2);
    CU_ASSERT_EQUAL(r->key_lines[1], 3);
    CU_ASSERT_EQUAL(r->key_lines[2], 6);
    CU_ASSERT_EQUAL(r->key_lines[3], 8);

    const struct cfg_node *name = cfg_map_get(r, "name");
    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    CU_ASSERT_EQUAL(name->kind, CFG_SCALAR);
    CU_ASSERT_STRING_EQUAL(name->scalar, "switchyard");
    CU_ASSERT_EQUAL(name->line, 2);
    CU_ASSERT_PTR_EQUAL(name->file, r->file);

    const struct cfg_node *list = cfg_map_get(r, "list");
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL(list->kind, CFG_LIST);
    CU_ASSERT_EQUAL(list->n, 2);
    CU_ASSERT_EQUAL(list->line, 4);
    CU_ASSERT_STRING_EQUAL(list->vals[0]->scalar, "one");
    CU_ASSERT_EQUAL(list->vals[0]->line, 4);
    const struct cfg_node *flow = list->vals[1];
    CU_ASSERT_EQUAL(flow->kind, CFG_MAP);
    CU_ASSERT_EQUAL(flow->line, 5);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(flow, "n")->scalar, "2");

    const struct cfg_node *inner = cfg_map_get(cfg_map_get(r, "map"), "inner");
    CU_ASSERT_PTR_NOT_NULL_FATAL(inner);
    CU_ASSERT_EQUAL(inner->kind, CFG_LIST);
    CU_ASSERT_EQUAL(inner->line, 7);
    CU_ASSERT_STRING_EQUAL(inner->vals[1]->scalar, "b");
    CU_ASSERT_EQUAL(cfg_map_key_line(cfg_map_get(r, "map"), "inner"), 7);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(r, "quoted")->scalar, "x: y");

    /* absent keys */
    CU_ASSERT_PTR_NULL(cfg_map_get(r, "nope"));
    CU_ASSERT_PTR_NULL(cfg_map_get(list, "one")); /* not a map */
    CU_ASSERT_PTR_NULL(cfg_map_get(NULL, "x"));
    CU_ASSERT_EQUAL(cfg_map_key_line(r, "nope"), r->line);
    CU_ASSERT_EQUAL(cfg_map_key_line(r, "quoted"), 8);
    cfg_tree_free(r);
}

static void test_tree_null_values(void)
{
    struct cfg_node *r = parse_ok("a:\nb: ~\nc: null\nd: \"\"\ne: 'null'\n"
                                  "f: |\n  two\n  lines\n");
    if (!r)
        return;
    const char *keys[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++) {
        const struct cfg_node *v = cfg_map_get(r, keys[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(v->kind, CFG_SCALAR);
        CU_ASSERT_STRING_EQUAL(v->scalar, "");
        CU_ASSERT_EQUAL(v->line, (int)i + 1);
    }
    /* A quoted "null" is the text, not nothing. */
    CU_ASSERT_STRING_EQUAL(cfg_map_get(r, "e")->scalar, "null");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(r, "f")->scalar, "two\nlines\n");
    cfg_tree_free(r);
}

static void test_tree_empty_document(void)
{
    const char *empties[] = {"", "# only a comment\n", "---\n", "~\n"};
    for (size_t i = 0; i < 4; i++) {
        struct cfg_node *r = parse_ok(empties[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL(r->kind, CFG_MAP);
        CU_ASSERT_EQUAL(r->n, 0);
        cfg_tree_free(r);
    }
}

static void test_tree_errors(void)
{
    parse_fails("- a\n- b\n", "t.yaml:1: the top level must be a map");
    parse_fails("just text\n", "t.yaml:1: the top level must be a map");
    parse_fails("a: 1\nb: 2\na: 3\n", "t.yaml:3: duplicate key 'a' (first at line 1)");
    parse_fails("outer:\n  x: 1\n  y: 2\n  x: 3\n",
                "t.yaml:4: duplicate key 'x' (first at line 2)");
    parse_fails("list:\n  - {k: 1, k: 2}\n", "t.yaml:2: duplicate key 'k'");
    parse_fails("a: &anchor 1\nb: *anchor\n", "t.yaml:1: anchors and aliases");
    parse_fails("a: 1\nb: *nothing\n", "t.yaml:2:");
    parse_fails("base: &b {x: 1}\n", "t.yaml:1: anchors and aliases");
    parse_fails("a: [1, 2\nb: 3\n", "t.yaml:");
    parse_fails("a: 1\n  b: 2\n", "t.yaml:2:");
    parse_fails("a:\n\tb: 1\n", "t.yaml:2:");
    parse_fails("a: 1\n---\nb: 2\n", "t.yaml:2: only one YAML document");
    parse_fails("? [x, y]\n: 1\n", "t.yaml:1: a map key must be a plain string");
    parse_fails("a: \"nul \\0 inside\"\n", "t.yaml:1: NUL character");
}

static void test_tree_too_deep(void)
{
    char text[512];
    size_t n = 0;
    n += (size_t)snprintf(text, sizeof text, "a: ");
    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    for (int i = 0; i < 100; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    parse_fails(text, "t.yaml:1: nested deeper than");
}

static void test_tree_load_file(void)
{
    char path[] = "/tmp/sy_cfg_tree_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char *text = "x: 1\ny:\n  z: true\n";
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    char err[256] = "";
    struct cfg_node *r = NULL;
    CU_ASSERT_EQUAL_FATAL(cfg_tree_load_file(path, &r, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(r->file, path);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(cfg_map_get(r, "y"), "z")->scalar, "true");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(r, "y")->vals[0]->file, path);
    cfg_tree_free(r);

    /* errors in a file name the file */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("ok: 1\nok: 2\n", f);
    fclose(f);
    r = NULL;
    CU_ASSERT_EQUAL(cfg_tree_load_file(path, &r, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:2: duplicate key 'ok'", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    unlink(path);

    CU_ASSERT_EQUAL(cfg_tree_load_file("/nonexistent/sy.yaml", &r, err,
                                       sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/sy.yaml: cannot open"));
    CU_ASSERT_EQUAL(cfg_tree_load_file("/tmp", &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/tmp: cannot read"));
}

static void test_tree_builders(void)
{
    struct cfg_node *m = cfg_node_new(CFG_MAP, "command line", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->kind, CFG_MAP);
    CU_ASSERT_EQUAL(m->n, 0);
    CU_ASSERT_EQUAL(cfg_map_set(m, "a", cfg_node_new_scalar("1", "x", 3)), 0);
    CU_ASSERT_EQUAL(cfg_map_set(m, "b", cfg_node_new_scalar("2", "x", 4)), 0);
    CU_ASSERT_EQUAL(m->n, 2);
    CU_ASSERT_EQUAL(cfg_map_key_line(m, "b"), 4);
    /* replacing keeps one entry and frees the old value (ASan checks) */
    CU_ASSERT_EQUAL(cfg_map_set(m, "a", cfg_node_new_scalar("9", "x", 7)), 0);
    CU_ASSERT_EQUAL(m->n, 2);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(m, "a")->scalar, "9");
    CU_ASSERT_EQUAL(cfg_map_key_line(m, "a"), 7);

    struct cfg_node *l = cfg_node_new(CFG_LIST, "x", 5);
    CU_ASSERT_EQUAL(cfg_list_append(l, cfg_node_new_scalar("p", "x", 5)), 0);
    CU_ASSERT_EQUAL(cfg_list_append(l, cfg_node_new_scalar(NULL, "x", 5)), 0);
    CU_ASSERT_EQUAL(l->n, 2);
    CU_ASSERT_STRING_EQUAL(l->vals[1]->scalar, "");
    CU_ASSERT_EQUAL(cfg_map_set(m, "list", l), 0);
    CU_ASSERT_PTR_EQUAL(cfg_map_get(m, "list"), l);

    /* wrong container or missing value: -1, and the value is not leaked */
    CU_ASSERT_EQUAL(cfg_map_set(m, "x", NULL), -1);
    CU_ASSERT_EQUAL(cfg_list_append(m, cfg_node_new_scalar("v", "x", 1)), -1);
    CU_ASSERT_EQUAL(cfg_map_set(l, "k", cfg_node_new_scalar("v", "x", 1)), -1);
    CU_ASSERT_EQUAL(m->n, 3);

    struct cfg_node *s = cfg_node_new(CFG_SCALAR, "x", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->scalar, "");
    cfg_tree_free(s);
    cfg_tree_free(m);
    cfg_tree_free(NULL);
}

static void test_tree_empty_map(void)
{
    const struct cfg_node *e = cfg_empty_map();
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->kind, CFG_MAP);
    CU_ASSERT_EQUAL(e->n, 0);
    CU_ASSERT_PTR_EQUAL(e, cfg_empty_map());
    CU_ASSERT_PTR_NULL(cfg_map_get(e, "anything"));
}

static void test_parse_seconds(void)
{
    static const struct { const char *in; double want; } good[] = {
        {"250ms", 0.25}, {"5s", 5}, {"1.5", 1.5}, {"2m", 120}, {"1h", 3600},
        {"0", 0}, {"10", 10}, {".5", 0.5}, {"0.5s", 0.5}, {"1.25h", 4500},
        {"1500ms", 1.5},
    };
    static const char *const bad[] = {
        "", "-1", "-5s", "abc", "5x", "5 s", " 5", "5s ", "1e3", "0x10",
        "inf", "nan", "s", "ms", ".", "5ss", "+5", "1.2.3", "5sec",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -42;
        CU_ASSERT_EQUAL(cfg_parse_seconds(good[i].in, &v), 0);
        CU_ASSERT_DOUBLE_EQUAL(v, good[i].want, 1e-9);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = -42;
        int rc = cfg_parse_seconds(bad[i], &v);
        if (rc != -1)
            fprintf(stderr, "\n'%s' parsed as seconds\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_DOUBLE_EQUAL(v, -42, 0); /* untouched on error */
    }
    double v;
    CU_ASSERT_EQUAL(cfg_parse_seconds(NULL, &v), -1);
}

static void test_parse_bytes(void)
{
    static const struct { const char *in; size_t want; } good[] = {
        {"1024", 1024}, {"64KiB", 65536}, {"32MiB", 32u << 20},
        {"1GiB", (size_t)1 << 30}, {"10MB", 10000000}, {"1k", 1024},
        {"1K", 1024}, {"2m", 2u << 20}, {"1g", (size_t)1 << 30},
        {"5KB", 5000}, {"3kb", 3000}, {"1GB", 1000000000}, {"0", 0},
        {"100b", 100}, {"1.5KiB", 1536}, {"0.5MiB", 512u << 10},
        {"4Ki", 4096}, {"2Mi", 2u << 20},
    };
    static const char *const bad[] = {
        "", "-1", "abc", "1x", "1 KiB", "1.5", "KiB", "1e6", "0x100",
        "18446744073709551616", "20000000000GiB", "1KiBB", "+1",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t v = 7;
        int rc = cfg_parse_bytes(good[i].in, &v);
        if (rc != 0 || v != good[i].want)
            fprintf(stderr, "\n'%s' -> rc %d, %zu\n", good[i].in, rc, v);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(v, good[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t v = 7;
        int rc = cfg_parse_bytes(bad[i], &v);
        if (rc != -1)
            fprintf(stderr, "\n'%s' parsed as bytes\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_EQUAL(v, 7);
    }
}

static void test_parse_bool(void)
{
    static const char *const yes[] = {"true", "True", "YES", "yes", "on", "1"};
    static const char *const no[] = {"false", "FALSE", "no", "off", "Off", "0"};
    static const char *const bad[] = {"", "2", "y", "enabled", "tru", "on "};
    for (size_t i = 0; i < 6; i++) {
        int v = -1;
        CU_ASSERT_EQUAL(cfg_parse_bool(yes[i], &v), 0);
        CU_ASSERT_EQUAL(v, 1);
        v = -1;
        CU_ASSERT_EQUAL(cfg_parse_bool(no[i], &v), 0);
        CU_ASSERT_EQUAL(v, 0);
        v = -1;
        CU_ASSERT_EQUAL(cfg_parse_bool(bad[i], &v), -1);
        CU_ASSERT_EQUAL(v, -1);
    }
}

void register_cfg_tree_tests(void)
{
    UNIT_SUITE("cfg_tree",
               UNIT_TEST(test_tree_shapes_and_lines),
               UNIT_TEST(test_tree_null_values),
               UNIT_TEST(test_tree_empty_document),
               UNIT_TEST(test_tree_errors),
               UNIT_TEST(test_tree_too_deep),
               UNIT_TEST(test_tree_load_file),
               UNIT_TEST(test_tree_builders),
               UNIT_TEST(test_tree_empty_map),
               UNIT_TEST(test_parse_seconds),
               UNIT_TEST(test_parse_bytes),
               UNIT_TEST(test_parse_bool));
}
