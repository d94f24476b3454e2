import pytest

from ssl_ser.registry import Registry, UnknownNameError


def test_register_get_and_helpful_unknown_name() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("alpha")(1)
    reg.register("beta")(2)
    assert reg.get("beta") == 2 and reg.names() == ["alpha", "beta"]
    with pytest.raises(UnknownNameError, match="unknown widget 'alpah'. Did you mean 'alpha'.*alpha, beta"):
        reg.get("alpah")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("alpha")(3)
