"""``make gpu-check`` refuses a machine without CUDA and formats a compact report."""
import pytest
import torch

from umm_helpers import gpu_check


def test_refuses_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*make test"):
        gpu_check.cuda_device()


def test_report_lists_steps_bench_and_notebooks():
    text = gpu_check.report(
        "NVIDIA H100", {"unit": {"exit": 0, "seconds": 12.34, "last_line": "300 passed"}},
        {"speedup": 3.5, "overhead": 1.02},
        [{"notebook": "00_setup_and_data.ipynb", "seconds": 4.0, "status": "ok"}])
    assert text.splitlines()[0] == "device: NVIDIA H100"
    assert "unit       exit 0     12.3 s  300 passed" in text
    assert '"overhead": 1.02' in text and "00_setup_and_data.ipynb" in text and "4.0 s" in text
