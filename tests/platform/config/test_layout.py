"""The layout promises: platform/ is a plain folder, and no app in it shadows a module."""

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PLATFORM_DIR = REPO_ROOT / "platform"


def test_platform_is_not_a_package():
    assert not (PLATFORM_DIR / "__init__.py").exists()


def test_no_app_shadows_a_stdlib_or_installed_module():
    names = [p.name for p in PLATFORM_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    assert "config" in names and "galaxies" in names
    clashes = []
    for name in names:
        if name in sys.stdlib_module_names:
            clashes.append((name, "stdlib"))
            continue
        for entry in sys.path:
            if Path(entry).resolve() in (PLATFORM_DIR, REPO_ROOT) or not entry:
                continue
            candidate = Path(entry)
            if (candidate / name).is_dir() or (candidate / f"{name}.py").exists():
                clashes.append((name, entry))
    assert clashes == []


def test_stdlib_platform_module_is_the_real_one():
    import platform

    assert platform.system()
    assert Path(importlib.util.find_spec("platform").origin).parent != PLATFORM_DIR


def test_manage_py_entry_point_sees_stdlib_platform():
    code = ("import runpy, sys; sys.argv=['manage.py','check']; "
            "runpy.run_path('manage.py', run_name='__main__'); import platform; print('OS=' + platform.system())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "OS=Linux" in out.stdout


def test_wsgi_asgi_and_celery_entry_points_import():
    code = ("import sys; sys.path.insert(0, 'platform'); import config.wsgi, config.asgi; "
            "from config.celery import app; import platform; print(platform.system(), app.main)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Linux galaxy_platform" in out.stdout
