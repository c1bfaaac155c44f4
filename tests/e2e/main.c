/* End-to-end tests: the real daemon against mock backends. */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>

#include "harness.h"

/* With arguments, runs one suite (argv[1]) or one test of it (argv[2]):
 * for chasing a single failure. */
int main(int argc, char **argv)
{
    unsigned failed, run;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    register_proxy_tests();
    register_error_tests();
    register_cli_e2e_tests();
    register_fallback_e2e_tests();
    register_routing_e2e_tests();
    register_health_e2e_tests();
    register_health_flags_e2e_tests();
    register_stream_e2e_tests();
    register_ops_e2e_tests();
    register_security_e2e_tests();
    register_dynconf_e2e_tests();
    register_http_e2e_tests();
    register_backend_e2e_tests();
    register_examples_e2e_tests();
    register_discovery_e2e_tests();
    register_k8s_e2e_tests();
    register_dns_e2e_tests();
    register_stats_e2e_tests();
    register_endpoints_e2e_tests();
    register_trace_e2e_tests();
    register_failures_e2e_tests();
    register_otlp_e2e_tests();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (argc > 1) {
        CU_pSuite suite = CU_get_suite(argv[1]);
        CU_pTest test = suite && argc > 2 ? CU_get_test(suite, argv[2]) : NULL;
        if (suite == NULL || (argc > 2 && test == NULL)) {
            fprintf(stderr, "e2e_tests: no suite or test by that name\n");
            CU_cleanup_registry();
            return 2;
        }
        if (test != NULL)
            CU_basic_run_test(suite, test);
        else
            CU_basic_run_suite(suite);
    } else {
        CU_basic_run_tests();
    }
    /* a suite whose setup or teardown failed (e.g. the daemon did not exit
     * cleanly on SIGTERM) counts as a failed test */
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
    run = CU_get_number_of_tests_run();
    printf("e2e: %u passed, %u failed\n", run - failed, failed);
    scratch_finish(failed != 0);
    CU_cleanup_registry();
    curl_global_cleanup();
    return failed ? 1 : 0;
}
