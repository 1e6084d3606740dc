"""reported_missing: a module imported inside it sees the named modules as not installed; after it,
they import as usual."""
import subprocess
import sys


def test_named_modules_are_missing_inside_the_block_only(tmp_path):
    (tmp_path / "heavy").mkdir()
    (tmp_path / "heavy" / "__init__.py").write_text("LOADED = True\n")
    (tmp_path / "heavy" / "part.py").write_text("")
    (tmp_path / "user.py").write_text("try:\n    import heavy.part\n    HEAVY = True\nexcept ImportError as e:\n"
                                      "    HEAVY = str(e)\n")
    code = ("import sys\n"
            "from beam_tensorrt.imports import reported_missing\n"
            "with reported_missing(['heavy'], 'not used here'):\n"
            "    import user\n"
            "print(user.HEAVY)\n"
            "print('heavy' in sys.modules)\n"
            "import heavy.part\n"
            "print(heavy.LOADED)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["heavy is not loaded here (not used here)", "False", "True"]
