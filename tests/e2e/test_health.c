#include "harness.h"
void register_health_e2e_tests(void) {}
