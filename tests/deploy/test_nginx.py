"""`nginx -t` on every nginx configuration in deploy/, with Debian's nginx. Each file is a
server-level snippet (conf.d/); the test wraps it in a minimal main configuration, and maps
the container's certificate folder to a freshly generated self-signed pair."""

import subprocess

import pytest

from .conftest import DEPLOY

CONFIGS = sorted(p for p in DEPLOY.rglob("*.conf"))


def test_all_three_configurations_are_found():
    assert {p.relative_to(DEPLOY).as_posix() for p in CONFIGS} == {
        "nginx.conf", "nginx/compose.conf", "k8s/base/nginx-sidecar.conf"}


@pytest.fixture(scope="module")
def certificates(tool, tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=galaxies.example.org", "-keyout", str(folder / "privkey.pem"),
                    "-out", str(folder / "fullchain.pem")], check=True, capture_output=True, timeout=60)
    return folder


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_nginx_accepts_the_configuration(tool, config, certificates, tmp_path):
    snippet = config.read_text().replace("/etc/nginx/certs/", f"{certificates}/")
    (tmp_path / "site.conf").write_text(snippet)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  access_log off;\n"
        f"  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  fastcgi_temp_path {tmp_path}/fastcgi;\n  uwsgi_temp_path {tmp_path}/uwsgi;\n"
        f"  scgi_temp_path {tmp_path}/scgi;\n  include {tmp_path}/site.conf;\n}}\n")
    out = subprocess.run([tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "test is successful" in out.stderr


def test_a_broken_configuration_is_rejected(tool, tmp_path):
    """The wrapper above really lets nginx judge the snippet."""
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                                         "events {}\nhttp { server { listen 8080; proxy_pass; } }\n")
    out = subprocess.run([tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
