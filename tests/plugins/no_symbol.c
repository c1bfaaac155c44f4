/* Loader test: a shared object without the sy_plugin_v1 descriptor. */
#include <switchyard/plugin.h>

SY_EXPORT int not_a_plugin(void);
int not_a_plugin(void)
{
    return 42;
}
