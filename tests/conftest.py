"""Shared by every test: tests/ is on sys.path (pytest's rootdir conftest), so ``support`` is importable."""
