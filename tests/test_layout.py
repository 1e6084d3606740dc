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


# The package's layers, lowest first: a module imports only from its own layer or lower ones.
LAYERS = {
    "core": "inference: tokenizer, classifier, backends (the TensorRT backend loads and runs plans), models, artifacts",
    "build": "offline build: calibration, Q/DQ, the quantized build and its guard, checkpoint export",
    "beam": "Beam: the config, the handler, the two transforms, rows",
    "apps": "applications: the command, the main job, the expansion service, the worker pool, runners",
}
BUILD = {"build"}
BEAM = {"config", "handler", "classify_text", "classify_text_batches", "rows", "arrow_rows", "reference", "yaml",
        "local_parallelism", "streaming",
        "beam_inference"}
APPS = {"", "cli", "jobs", "expansion", "worker_pool", "runners", "formats"}


def layer_of(module: str) -> int:
    """0 core, 1 build, 2 beam, 3 apps, for a module named relative to the package (``a.b``)."""
    parts = module.split(".")
    if parts[0] in BUILD:
        return 1
    if parts[0] in BEAM:
        return 2
    if parts[0] in APPS or module == "":
        return 3
    return 0


def imports_of(path) -> set[str]:
    """The package modules ``path`` imports (anywhere in it, also inside functions), relative names."""
    import ast

    relative = path.relative_to(PACKAGE).with_suffix("")
    here = list(relative.parts[:-1] if relative.name != "__init__" else relative.parts[:-1])
    if relative.name == "__init__":
        here = list(relative.parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("beam_tensorrt"):
                target = node.module[len("beam_tensorrt."):] if node.module != "beam_tensorrt" else ""
            else:
                continue
            found |= {f"{target}.{a.name}".strip(".") if not node.module else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name[len("beam_tensorrt."):] for a in node.names if a.name.startswith("beam_tensorrt.")}
    return found


def test_no_module_imports_from_a_higher_layer():
    climbs = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        for target in imports_of(path):
            if layer_of(target) > layer_of(name):
                climbs.append(f"{name} ({list(LAYERS)[layer_of(name)]}) imports {target} ({list(LAYERS)[layer_of(target)]})")
    assert not climbs, "imports up the layers:\n" + "\n".join(sorted(climbs))


def test_the_layer_check_sees_a_climb():
    assert layer_of("backends.tensorrt.loader") == 0 and layer_of("build.quantize") == 1
    assert layer_of("classify_text") == 2 and layer_of("jobs.inputs") == 3 and layer_of("errors") == 0
    loader = PACKAGE / "backends" / "tensorrt" / "loader.py"
    assert "backends.tensorrt.spec" in imports_of(loader) and "errors" in imports_of(loader)
