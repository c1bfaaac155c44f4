#include "harness.h"
void register_cli_e2e_tests(void) {}
