"""Benchmarks run by hand (not collected by pytest): a community generator and the registry run."""
