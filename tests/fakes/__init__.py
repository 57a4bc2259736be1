"""In-process fakes of external services used by the Ask Hub test-suite."""
