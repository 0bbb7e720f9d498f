"""The API for users' own policies and protocols, in one import (docs/extending.md):

    from vfslab.api import WritebackPolicy, Tunable          # a writeback policy
    from vfslab.api import Protocol, WorklistLock            # a locking protocol
    from vfslab.api import KernelObserver, declare_guards    # events; checkable field guards
    from vfslab.api import declare_subclass                  # a lock order among instances

Nothing else in vfslab needs to be read to write either.
"""

from vfslab.kern.guards import declare_guards
from vfslab.kern.lock import LK_NESTED, declare_subclass
from vfslab.kern.notify import KernelObserver
from vfslab.kern.protocol import Protocol
from vfslab.kern.protocol_fixes import WorklistLock
from vfslab.policy.base import Tunable, WritebackPolicy

NS = 1_000_000_000

__all__ = ["LK_NESTED", "NS", "KernelObserver", "Protocol", "Tunable", "WorklistLock",
           "WritebackPolicy", "declare_guards", "declare_subclass"]
