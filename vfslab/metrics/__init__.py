"""Measurements that decide between designs: collectors during a run, tables and plots after."""
