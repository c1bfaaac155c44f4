#include "harness.h"
void register_fallback_e2e_tests(void) {}
