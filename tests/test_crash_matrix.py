"""The crash matrix at small scale: every library scenario under the three policies, on the
2004 kernel and with the biodoned fix, without and with 3% of writes failing; a few crashes of
a 4-second run each, with windows short enough (as in test_crash_property) that a late write
would show. `vfslab crashtest` runs the same batches at full scale (the note of #17 has the
full matrix).

What must hold everywhere: fsck repairs every image and it mounts again; no byte older than a
policy's promise was lost without having been written out in time (`over_bound_late_bytes`:
the promise is to write out, not to outrun the disk's queue or its failures). Without
injected faults no fsync'd byte is lost (baddisk's and protocol's disks fail writes of their
own, and 2.0 loses fsync'd data to them); with them, 2.0 as it was loses fsync'd data
(dropped page writes, lost metadata errors), so the faulty runs take every fix
(`uvm.write_error=redirty`, `genfs.pr24596_fix`, `bio.write_error=redirty`) and then no
fsync'd byte is lost without an error telling the program. (`bio.write_error=report` left one
hole, on mixed: a bitmap block whose write failed thrown away and blocks given out twice.)"""

from __future__ import annotations

from typing import Any

import pytest

from vfslab.crash.crashtest import run_batch
from vfslab.scenarios import all_names

FAULTS = [{"kind": "fraction", "fraction": 0.03, "op": "write"}]
EVERY_FIX = {"uvm.write_error": "redirty", "genfs.pr24596_fix": True,
             "bio.write_error": "redirty"}
SHORT: dict[str, dict[str, Any]] = {
    "syncer": {"syncdelay": 2, "filedelay": 2, "dirdelay": 1, "metadelay": 1},
    "trickle": {"window": 1.0, "hz": 10.0},
    "linux": {"dirty_expire_centisecs": 100, "dirty_writeback_centisecs": 50},
}
OWN_FAULTS = {"baddisk", "protocol"}
# found by this test, not yet understood or fixed (strict: a fix makes them fail here)
KNOWN: dict[tuple[str, str, str], str] = {
    # ("protocol", "linux", "3%") was here: 32 KiB fsync'd and lost with no error told; the
    # cause was ffs_balloc dropping the error of a new indirect block's synchronous write
    # (the write(2) went on, the pages' pointers went with the thrown-away buffer)
}


def _cases() -> list[Any]:
    out = []
    for scenario in all_names():
        for protocol in ("netbsd-2.0", "biodoned"):
            for faults in ("none", "3%"):
                for policy in SHORT:
                    why = KNOWN.get((scenario, policy, faults))
                    marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
                    out.append(pytest.param(scenario, protocol, faults, policy, marks=marks))
    return out


@pytest.mark.parametrize(("scenario", "protocol", "faults", "policy"), _cases())
def test_every_scenario_keeps_what_was_promised(scenario: str, protocol: str, faults: str,
                                               policy: str) -> None:
    kernel: dict[str, Any] = {"faults": FAULTS, **EVERY_FIX} if faults != "none" else {}
    row = run_batch({"scenario": scenario, "policy": policy, "protocol": protocol,
                     "seed": 0, "batch": 0, "crashes": 4, "duration_s": 4.0,
                     "kernel": kernel, "policy_options": SHORT[policy]})
    assert row["crashes"] == 4
    for bug in row["bugs"]:
        assert "fsync'd bytes lost" in bug["bug"], bug          # not fsck, not the mount
    assert row["over_bound_late_bytes"] == 0, row
    if faults != "none" or scenario not in OWN_FAULTS:
        assert row["fsync_bytes_lost"] == 0, row["bugs"]
