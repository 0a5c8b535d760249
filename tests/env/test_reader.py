"""The access-summary reader's failure paths against real sockets on 127.0.0.1 (no model): a port
nobody listens on, a peer that accepts and never answers (timeouts, retries), the bearer token
taken from an environment variable, and each failure as a tool error of the page it was for."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.toy import toy_backend, toy_tasks
from wideseek_env.search.reader import PageReader, ReaderError, reader_messages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentPeer:
    """Accepts connections, records what arrives, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                self.requests.append(conn.recv(65536))

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def test_unreachable_reader_is_an_error_after_its_retries() -> None:
    reader = PageReader(f"http://127.0.0.1:{_free_port()}", "m", max_retries=2, backoff_s=0.01)
    with pytest.raises(ReaderError, match=r"no answer after 3 attempt\(s\).*ConnectionError"):
        reader.summarize("what", "page text")
    assert reader.requests == 1 and reader.failures == 1


def test_a_silent_reader_times_out_and_the_key_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("WIDESEEK_TEST_READER_KEY", "sk-test-123")
    peer = SilentPeer()
    try:
        reader = PageReader(peer.url, "m", api_key_env="WIDESEEK_TEST_READER_KEY",
                            timeout_s=0.3, max_retries=1, backoff_s=0.01)
        t0 = time.monotonic()
        with pytest.raises(ReaderError, match="ReadTimeout"):
            reader.summarize("the length", "Amberflow is 412 km long.")
        assert time.monotonic() - t0 < 5  # two timeouts, not a hang
        deadline = time.monotonic() + 2
        while len(peer.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(peer.requests) == 2  # the first try and one retry
        head = peer.requests[0].decode("latin-1")
        assert head.startswith("POST /v1/chat/completions ")
        assert "Authorization: Bearer sk-test-123" in head
        assert "sk-test-123" not in repr(reader)
    finally:
        peer.close()


def test_a_failing_reader_is_a_tool_error_of_that_page() -> None:
    reader = PageReader(f"http://127.0.0.1:{_free_port()}", "m", max_retries=0)
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), interface="paper", reader=reader)
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": {"name": "create_sub_agents", "arguments": {"sub_agents": [{"prompt": "x"}]}}})
    url = toy_backend().search(["Amberflow"], 1)[0][0].url
    obs, _, _, _, infos = env.step({"sub_0": {"name": "access", "arguments": {"urls": [
        {"url": url, "info_to_extract": "length"}, {"url": url}]}}})
    text = obs["sub_0"][-1]["content"]
    assert f"# Access URL:\n{url}\n# Result:\nError: the page could not be summarised: access " \
           "summary: no answer" in text
    # no info_to_extract: the raw page, the reader is not asked
    assert "Amberflow" in text.split("\n\n# Access URL:\n")[1] and reader.requests == 1
    assert infos["sub_0"]["tool_errors"] == 1 and env.agents == ["lead", "sub_0"]


def test_a_reader_needs_the_paper_interface_and_says_what_it_sends() -> None:
    with pytest.raises(ValueError, match="needs interface='paper'"):
        WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), reader=PageReader("http://x", "m"))
    system, user = reader_messages("the river's length", "PAGE")
    assert system["role"] == "system" and "ONLY the page content" in system["content"]
    assert user["content"].startswith("INFORMATION TO EXTRACT:\nthe river's length\n\nPAGE CONTENT:\nPAGE")
