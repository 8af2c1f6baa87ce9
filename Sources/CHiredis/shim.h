// Debian's libhiredis-dev (0.14.1): the blocking Redis client the Sentinel target drives from a
// thread pool of its own. pkg-config's include path is /usr/include/hiredis.
#include <hiredis.h>
