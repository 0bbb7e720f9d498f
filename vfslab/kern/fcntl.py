"""Open flags, seek whences and errno values (sys/sys/fcntl.h, sys/sys/errno.h of NetBSD)."""

from typing import Final

O_RDONLY: Final = 0x0
O_WRONLY: Final = 0x1
O_RDWR: Final = 0x2
O_ACCMODE: Final = 0x3
O_NONBLOCK: Final = 0x4
O_APPEND: Final = 0x8
O_SYNC: Final = 0x80
O_CREAT: Final = 0x200
O_TRUNC: Final = 0x400
O_EXCL: Final = 0x800
O_DSYNC: Final = 0x10000
O_DIRECT: Final = 0x80000
O_DIRECTORY: Final = 0x200000

SEEK_SET: Final = 0
SEEK_CUR: Final = 1
SEEK_END: Final = 2

EPERM: Final = 1
ENOENT: Final = 2
EIO: Final = 5
EBADF: Final = 9
ECHILD: Final = 10
ENOMEM: Final = 12
EBUSY: Final = 16
EEXIST: Final = 17
EXDEV: Final = 18
ENOTDIR: Final = 20
EISDIR: Final = 21
EINVAL: Final = 22
ENFILE: Final = 23
EMFILE: Final = 24
EFBIG: Final = 27
ENOSPC: Final = 28
ESPIPE: Final = 29
ENAMETOOLONG: Final = 63
ENOTEMPTY: Final = 66
ENOSYS: Final = 78

ERRNO_NAMES: Final[dict[int, str]] = {
    v: k for k, v in list(globals().items()) if k.startswith("E") and isinstance(v, int)
}
