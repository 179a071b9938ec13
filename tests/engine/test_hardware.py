import pytest
import torch

from dlmath import device


def test_auto_matches_cuda_availability(monkeypatch):
    monkeypatch.delenv("DLMATH_DEVICE", raising=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device().type == expected
    assert device("auto").type == expected


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"),          # CUDA first
    (True, False, "cuda"),
    (False, True, "mps"),          # then Apple's MPS
    (False, False, "cpu"),         # then the CPU
])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("DLMATH_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert device().type == expected
    assert device("auto").type == expected


def test_mps_by_name_or_environment(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setenv("DLMATH_DEVICE", "mps")
    assert device() == torch.device("mps")
    assert device("MPS") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="DLMATH_DEVICE is 'mps' but no MPS device"):
        device()
    with pytest.raises(ValueError, match="no MPS device is available"):
        device("mps")


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("DLMATH_DEVICE", "cpu")
    assert device() == torch.device("cpu")
    # an explicit argument wins over the environment
    assert device(torch.device("cpu")) == torch.device("cpu")


def test_bad_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("DLMATH_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="DLMATH_DEVICE"):
        device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match="CUDA is not available"):
        device("cuda")


def test_type_errors():
    with pytest.raises(TypeError, match="str or torch.device"):
        device(3)  # type: ignore[arg-type]

