// Debian's liblz4-dev: the LZ4 block format compresses snapshots.
#include <lz4.h>
