"""The README's configuration reference is the generated one, so docs and code cannot disagree."""
from beam_tensorrt.reference import BEGIN, END, config_reference_markdown
from conftest import ROOT


def test_readme_config_reference_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(BEGIN):readme.index(END) + len(END)]
    assert section == config_reference_markdown(), "run `beam-tensorrt config-reference` and paste it into README.md"


def test_readme_quickstart_is_the_ci_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
