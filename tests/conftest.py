"""Test harness code that stands in for kernel callers appears in call chains, as kernel
functions do."""

from vfslab.sim import stack

stack.register_kernel_modules("tests", "test_")
