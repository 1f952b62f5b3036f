// The journal folder's lock (see CSwitchboardJournal.h).
#define _GNU_SOURCE
#include "CSwitchboardJournal.h"
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#ifdef F_OFD_SETLK
#define SB_SETLK F_OFD_SETLK
#define SB_GETLK F_OFD_GETLK
#else
#define SB_SETLK F_SETLK
#define SB_GETLK F_GETLK
#endif

/// A write lock on the whole file; l_pid must be 0 for an open file description's lock.
static struct flock whole_file(void) {
    struct flock request;
    memset(&request, 0, sizeof request);
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    return request;
}

int sb_lock_file(int fd) {
    struct flock request = whole_file();
    return fcntl(fd, SB_SETLK, &request);
}

int sb_file_is_locked(int fd) {
    struct flock request = whole_file();
    if (fcntl(fd, SB_GETLK, &request) != 0) return -1;
    return request.l_type != F_UNLCK;
}
