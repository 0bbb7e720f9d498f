"""Workloads from the formats people already have: fio job files and strace logs."""
