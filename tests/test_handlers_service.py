"""The service started as the README says, talked to over HTTP, and the `chat` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def service(tmp_path):
    """`flask --app app run` (the README's run command) on a free port, with its own SQLite file."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}",
        "WECHAT_TOKEN": "readme-token",
        "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "WECHAT_APPID": "wxreadme",
    }
    proc = subprocess.Popen(
        [FLASK, "--app", "app", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as res:
                if res.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read()) from None
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("the service did not start within 60 s")
    yield base, env
    proc.terminate()
    proc.wait(timeout=10)


def chat(env, *args):
    return subprocess.run(
        [FLASK, "--app", "app", "chat", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("mode", [[], ["--safe"]])
def test_the_running_service_answers_a_signed_question_over_http(service, mode):
    base, env = service
    res = chat(env, "--url", f"{base}/wechat", *mode, "没签劳动合同能要二倍工资吗")
    assert res.returncode == 0, res.stderr
    assert "律师" in res.stdout and "依据" in res.stdout


def test_an_unsigned_post_to_the_running_service_is_refused(service):
    base, _ = service
    request = urllib.request.Request(f"{base}/wechat", data=b"<xml/>", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 403


def test_chat_in_process_with_the_default_configuration(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'inproc.db'}"}
    res = chat(env, "工伤认定要多长时间")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()
