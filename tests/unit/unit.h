/* Unit tests: each test_*.c file registers one CUnit suite. */
#ifndef SY_UNIT_H
#define SY_UNIT_H

#include <CUnit/CUnit.h>

void register_cfg_tree_tests(void);
void register_config_tests(void);
void register_cli_tests(void);
void register_loader_tests(void);
void register_request_tests(void);
void register_http_headers_tests(void);
void register_retry_tests(void);
void register_plugin_tests(void);
void register_request_prompt_tests(void);
void register_routing_tests(void);
void register_health_tests(void);
void register_dynconf_tests(void);
void register_json_scan_tests(void);
void register_http_parse_tests(void);
void register_log_tests(void);
void register_upstream_error_tests(void);
void register_discovery_tests(void);
void register_sim_model_tests(void);
void register_k8s_tests(void);
void register_dns_packet_tests(void);
void register_prom_text_tests(void);
void register_multipart_tests(void);
void register_stats_tests(void);
void register_trace_tests(void);

struct setup;
struct sy_cfg;
/* A config loaded from YAML ("base.yaml"), or config_new() when yaml is
 * NULL; NULL (the error printed) when it does not load. */
struct sy_cfg *unit_base_config(const char *yaml);
/* A setup built from a YAML string ("test.yaml") with the plugins of this
 * build and 2 workers, the real loader and host API; NULL with err. */
struct setup *unit_make_setup(const char *yaml, char *err, size_t errlen);

/* Add a suite with the given tests; aborts the run on CUnit errors. */
#define UNIT_SUITE(name, ...)                                                  \
    do {                                                                       \
        CU_pSuite s_ = CU_add_suite(name, NULL, NULL);                         \
        struct { const char *n; CU_TestFunc f; } t_[] = { __VA_ARGS__ };       \
        for (size_t i_ = 0; s_ && i_ < sizeof t_ / sizeof t_[0]; i_++)         \
            CU_add_test(s_, t_[i_].n, t_[i_].f);                               \
    } while (0)
#define UNIT_TEST(f) { #f, f }

#endif
