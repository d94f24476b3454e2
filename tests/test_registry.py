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


def test_a_broken_component_module_fails_every_lookup(tmp_path, monkeypatch) -> None:
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("")
    (package / "bad.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[int] = Registry("widget", package="brokenpkg")
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError, match="not_a_module_anywhere"):
            reg.get("anything")


def test_single_modules_register_on_first_lookup_only(tmp_path, monkeypatch) -> None:
    """``modules=``: a component beside the registry's own module, imported lazily (an eager
    import would be a cycle: the component imports the registry)."""
    import sys

    (tmp_path / "gadget_reg.py").write_text(
        "from ssl_ser.registry import Registry\nREG = Registry('gadget', modules=('gadget_impl',))\n"
        "REG.register('plain')(1)\n")
    (tmp_path / "gadget_impl.py").write_text("from gadget_reg import REG\nREG.register('extra')(2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gadget_reg  # type: ignore[import-not-found]

    assert "gadget_impl" not in sys.modules
    assert gadget_reg.REG.get("extra") == 2 and gadget_reg.REG.names() == ["extra", "plain"]
    monkeypatch.delitem(sys.modules, "gadget_reg")
    monkeypatch.delitem(sys.modules, "gadget_impl")
