"""Crash tests: the journal of what a workload was promised, disk images after a power cut at
any instant, loss reports, and the crash-test driver (vfslab crashtest)."""
