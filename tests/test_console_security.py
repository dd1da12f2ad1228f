"""Console security over real HTTP: cross-site refusal, token, bind check, body limit, paths."""

from __future__ import annotations

import os
import socket

import httpx
import pytest
from starlette import applications, requests, responses, routing

from omgrab.app import dashboard
from omgrab.app.web import security
from tests import test_app

CSRF = {security.CSRF_HEADER: "1"}


def serve(config: security.SecurityConfig, host: str = "127.0.0.1"):
    calls: list[str] = []

    async def change(request: requests.Request) -> responses.Response:
        body = await request.body()
        calls.append(f"{request.method} {len(body)}")
        return responses.JSONResponse({"ok": True})

    async def read(_request: requests.Request) -> responses.Response:
        calls.append("GET")
        return responses.JSONResponse({"secret": "status"})

    app = applications.Starlette(
        routes=[
            routing.Route("/", read),
            routing.Route("/api/status", read),
            routing.Route("/api/change", change, methods=["POST", "DELETE"]),
        ]
    )
    middleware = security.SecurityMiddleware(app, config)
    server = dashboard.DashboardServer(middleware, host, 0)
    server.start()
    return server, calls, middleware


@pytest.fixture
def loopback():
    server, calls, middleware = serve(security.SecurityConfig(max_body_bytes=1024))
    yield server, calls, middleware
    server.stop()


def test_state_change_without_the_csrf_header_never_reaches_a_handler(loopback) -> None:
    # What fetch(url, {method: "POST", mode: "no-cors"}) from another page sends: no custom
    # header (it would need a preflight), a foreign Origin, Sec-Fetch-Site cross-site.
    server, calls, middleware = loopback
    with httpx.Client(base_url=server.url, timeout=10) as client:
        no_cors = client.post(
            "/api/change",
            headers={"Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "same-site"},
        )
        assert no_cors.status_code == 403
        assert client.post("/api/change").status_code == 403  # even same-origin tools need it
        assert client.post("/api/change", headers={**CSRF, "Origin": "null"}).status_code == 403
        foreign = client.post("/api/change", headers={**CSRF, "Origin": "http://evil.test"})
        assert foreign.status_code == 403 and "cross-origin" in foreign.text
        assert calls == []
        same = client.post("/api/change", headers={**CSRF, "Origin": server.url})
        assert same.status_code == 200
    assert calls == ["POST 0"]
    assert middleware.refused == 4


def test_cross_site_reads_are_refused_but_a_link_to_the_page_opens(loopback) -> None:
    server, calls, _ = loopback
    with httpx.Client(base_url=server.url, timeout=10) as client:
        cross = client.get("/api/status", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        foreign = client.get("/api/status", headers={"Origin": "http://127.0.0.1:1"})
        assert foreign.status_code == 403
        link = client.get(
            "/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        )
        assert link.status_code == 200
        assert client.get("/api/status").json() == {"secret": "status"}
    assert calls == ["GET", "GET"]


def test_unknown_host_header_is_refused_against_dns_rebinding(loopback) -> None:
    server, calls, _ = loopback
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/api/status", headers={"Host": "attacker.example:80"}).status_code == 421
        assert client.get("/api/status", headers={"Host": "localhost:1234"}).status_code == 200
    assert calls == ["GET"]


def test_request_bodies_are_size_limited_announced_or_streamed(loopback) -> None:
    server, calls, _ = loopback

    def chunks(sizes):
        def generate():
            for size in sizes:
                yield b"x" * size

        return generate()

    with httpx.Client(base_url=server.url, timeout=10, headers=CSRF) as client:
        assert client.post("/api/change", content=b"x" * 1025).status_code == 413
        # Chunked, no Content-Length: one byte over the limit is refused, the limit passes.
        assert client.post("/api/change", content=chunks([512, 512, 1])).status_code == 413
        assert client.post("/api/change", content=chunks([512, 512])).status_code == 200
        assert client.post("/api/change", content=b"x" * 1024).status_code == 200
    assert calls == ["POST 1024", "POST 1024"]


def test_with_a_token_every_endpoint_requires_it() -> None:
    server, calls, _ = serve(security.SecurityConfig(token="s3cret-token"))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/").status_code == 401
            assert client.get("/api/status").status_code == 401
            assert client.get("/api/status?token=wrong").status_code == 401
            bearer = {"Authorization": "Bearer s3cret-token"}
            assert client.get("/api/status", headers=bearer).status_code == 200
            assert client.post("/api/change", headers=bearer).status_code == 403  # still CSRF
            # Logging in once with ?token= sets an HttpOnly SameSite=Strict cookie.
            login = client.get("/?token=s3cret-token")
            assert login.status_code == 200
            cookie = login.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert client.get("/api/status").status_code == 200  # the cookie now
            assert client.post("/api/change", headers=CSRF).status_code == 200
    finally:
        server.stop()
    assert calls == ["GET", "GET", "GET", "POST 0"]


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if security.is_loopback(address) else address


def test_binding_off_loopback_without_a_token_is_refused_with_a_clear_message() -> None:
    with pytest.raises(security.InsecureBindError, match=r"0\.0\.0\.0.*token"):
        dashboard.DashboardOptions(host="0.0.0.0").resolve_token()
    with pytest.raises(security.InsecureBindError):
        security.check_bind("192.168.1.20", "")
    security.check_bind("127.0.0.1", None)
    security.check_bind("::1", None)
    security.check_bind("0.0.0.0", "tok")


def test_generated_token_is_stored_0600_printed_once_and_guards_every_endpoint(
    tmp_path, capsys
) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    config = test_app.small_config(
        tmp_path, dashboard_port=0, dashboard_host=address, perception=False
    )
    from omgrab.app import device_app

    app = device_app.DeviceApp(config)
    app.start()
    try:
        token_file = config.data_dir / "dashboard-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        printed = capsys.readouterr().out
        assert printed.count(token) == 2  # the token and the login URL, once
        url = app.dashboard_url
        assert url is not None
        with httpx.Client(base_url=url, timeout=10) as client:
            for path in ("/", "/api/status", "/api/recordings", "/metrics", "/api/preview.jpg"):
                assert client.get(path).status_code == 401, path
            ok = client.get("/api/status", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
    finally:
        app.stop()
    again = dashboard.DashboardOptions(host=address, token_file=token_file)
    assert again.resolve_token() == token
    assert capsys.readouterr().out == ""  # printed only at first start


def test_token_file_readable_by_others_is_rejected(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("abc\n")
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="0600"):
        security.load_or_create_token(path)


@pytest.mark.parametrize(
    "name",
    ["../x.mkv", "..", ".hidden.mkv", "a/b.mkv", "/etc/passwd", "x\\..\\y", "", "a\x00.mkv"],
)
def test_safe_child_rejects_names_leaving_the_directory(tmp_path, name) -> None:
    with pytest.raises(ValueError):
        security.safe_child(tmp_path, name)


def test_safe_child_rejects_a_symlink_pointing_outside(tmp_path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    outside = tmp_path / "secret.mkv"
    outside.write_bytes(b"secret")
    (root / "link.mkv").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        security.safe_child(root, "link.mkv")
    assert security.safe_child(root, "2026-01-01.mkv") == root.resolve() / "2026-01-01.mkv"


def test_cli_refuses_an_unusable_token_file_with_one_line_and_exit_2(tmp_path) -> None:
    from tests import test_cli

    data = tmp_path / "data"
    data.mkdir()
    token = data / "dashboard-token"  # where a token generated at first start is kept
    token.write_text("abc\n")
    os.chmod(token, 0o644)
    done = test_cli.omgrab(
        "run",
        "--data-dir",
        str(data),
        "--dashboard-port",
        "0",
        "--dashboard-host",
        "0.0.0.0",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "make it 0600" in done.stderr
    assert "Traceback" not in done.stderr
