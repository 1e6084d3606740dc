"""scripts/maven_classpath.py: a classpath kept for a version of a Maven descriptor answers without
Maven (a machine where bench/stage_java.sh staged the jars); otherwise Maven is needed."""
import pytest

from scripts import maven_classpath


def test_a_kept_classpath_answers_without_maven_while_its_jars_exist(tmp_path, monkeypatch):
    monkeypatch.setattr(maven_classpath, "CACHE", tmp_path / "cache")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # neither java nor mvn
    pom = tmp_path / "broker" / "pom.xml"
    pom.parent.mkdir()
    pom.write_text("<project/>")
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    with pytest.raises(maven_classpath.JavaToolsError, match="needs java and mvn on PATH"):
        maven_classpath.classpath(pom)
    maven_classpath.record(pom, [str(j) for j in jars])
    assert maven_classpath.classpath(pom).split(":") == [str(j) for j in jars]
    pom.write_text("<project><!-- another version --></project>")  # kept for the old version only
    with pytest.raises(maven_classpath.JavaToolsError):
        maven_classpath.classpath(pom)
    pom.write_text("<project/>")
    jars[1].unlink()  # a kept classpath whose jars are gone is resolved again
    with pytest.raises(maven_classpath.JavaToolsError):
        maven_classpath.classpath(pom)
