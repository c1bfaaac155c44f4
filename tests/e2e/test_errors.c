#include "harness.h"
void register_error_tests(void) {}
