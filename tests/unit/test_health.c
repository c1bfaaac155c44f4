#include "unit.h"
void register_health_tests(void) {}
