"""The plugins folder as Airflow scans it: nothing to import file by file, so no import errors in any process."""

from batchkit.dev.devstack import REPO


def test_airflow_imports_no_plugin_file_on_its_own():
    """Airflow would load each file as a top-level module (``errors``, ``params``...): twice the imports in every
    task process, shadowed names, and relative imports failing. ``plugins/.airflowignore`` keeps it out."""
    import sys

    from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

    before = set(sys.modules)
    plugins, errors = _load_plugins_from_plugin_directory(str(REPO / "plugins"))
    loaded = [
        n for n in set(sys.modules) - before if str(getattr(sys.modules[n], "__file__", "")).startswith(str(REPO))
    ]
    assert (plugins, errors, loaded) == ([], {}, [])


def test_every_module_imports_as_part_of_its_package():
    import importlib
    import pkgutil

    import openai_batch

    names = [m.name for m in pkgutil.walk_packages(openai_batch.__path__, "openai_batch.")]
    assert "openai_batch.params" in names
    for name in names:
        importlib.import_module(name)
