import pytest
import torch

import dlmath
from dlmath import device


def test_auto_matches_cuda_availability(monkeypatch):
    monkeypatch.delenv("DLMATH_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device().type == expected
    assert device("auto").type == expected


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


def test_lazy_submodules():
    assert dlmath._book.plotting.OKABE_ITO["blue"] == "#0072B2"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        dlmath.nonexistent  # noqa: B018
