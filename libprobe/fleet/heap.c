/* The heap profile of /debug/pprof/heap and of the pusher: provided by the memory
 * module, which registers fleet_heap_provider when it is on. Until then, none. */
#include "fleet.h"

#include <probe/common.h>

int (*fleet_heap_provider)(char **ret_buf, size_t *ret_len);

int
fleet_heap_profile(char **ret_buf, size_t *ret_len)
{
    int (*p)(char **, size_t *) = __atomic_load_n(&fleet_heap_provider, __ATOMIC_ACQUIRE);

    return p ? p(ret_buf, ret_len) : PROBE_ENOTSUP;
}
