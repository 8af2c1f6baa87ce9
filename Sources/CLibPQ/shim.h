// Debian's libpq-dev: the PostgreSQL client library the gateway probes and queries through.
#include <libpq-fe.h>
