"""vLLM's start-up scan of `sys.modules` must not crash when bm25s (numba, llvmlite) is loaded.

Found by the full suite: the search tests import bm25s, after which every vLLM engine start failed
with `'_lib_fn_wrapper' object has no attribute 'get'`.
"""

import sys

import pytest

pytest.importorskip("vllm")
pytest.importorskip("bm25s")


def test_vllm_kernel_rebinding_survives_llvmlite():
    import bm25s  # noqa: F401  (imports numba, which loads llvmlite's ffi wrappers)
    from vllm.triton_utils import dispatcher

    from wideseek_rl.engines.vllm import _modules_vllm_can_scan

    assert "llvmlite.binding.ffi" in sys.modules
    before = dict(sys.modules)
    with _modules_vllm_can_scan():
        assert "llvmlite.binding.ffi" not in sys.modules
        dispatcher._rebind_kernels([])  # the pass vLLM runs when an LLM starts
    assert sys.modules["llvmlite.binding.ffi"] is before["llvmlite.binding.ffi"]
    assert set(before) <= set(sys.modules)
