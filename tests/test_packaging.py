"""A regular (non-editable) install ships every package: each source directory with an
__init__.py is listed in pyproject.toml (an editable install hides a missing one)."""

from layout import ROOT, SETUPTOOLS


def test_every_package_directory_is_listed():
    tool = SETUPTOOLS
    listed = set(tool["packages"])
    found = set()
    for name, folder in tool["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"
