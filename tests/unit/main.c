/* Runs every unit suite; exit status 1 when any assertion failed. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include "unit.h"

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    register_cfg_tree_tests();
    register_config_tests();
    register_cli_tests();
    register_loader_tests();
    register_request_tests();
    register_http_headers_tests();
    register_retry_tests();
    register_plugin_tests();
    register_request_prompt_tests();
    register_routing_tests();
    register_health_tests();
    register_dynconf_tests();
    register_json_scan_tests();
    register_http_parse_tests();
    register_log_tests();
    register_upstream_error_tests();
    register_discovery_tests();
    register_sim_model_tests();
    register_k8s_tests();
    register_dns_packet_tests();
    register_prom_text_tests();
    register_multipart_tests();
    register_stats_tests();
    register_trace_tests();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed(), run = CU_get_number_of_tests_run();
    printf("unit: %u passed, %u failed\n", run - failed, failed);
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
