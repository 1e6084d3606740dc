"""A reader finds the tests of a module by name: ``a/b/c.py`` is tested in ``tests/test_a_b_c.py``,
or in the test file of the nearest package that holds it (``tests/test_a_b.py``, ``tests/test_a.py``)."""
from conftest import ROOT

PACKAGE = ROOT / "provider" / "beam_tensorrt"


def defines_anything(module) -> bool:
    return any(line.startswith(("def ", "class ")) for line in module.read_text().splitlines())


def test_every_module_has_a_test_file_named_after_it():
    tests = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    missing = []
    for module in sorted(PACKAGE.rglob("*.py")):
        parts = list(module.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__main__" or (parts[-1] == "__init__" and not defines_anything(module)):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts:
            continue
        names = {"test_" + "_".join(parts[:k]) for k in range(1, len(parts) + 1)}
        if not names & tests:
            missing.append(f"{module.relative_to(ROOT)} (expected one of {sorted(names)})")
    assert not missing, "modules without a test file named after them:\n" + "\n".join(missing)
