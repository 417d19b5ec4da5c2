"""A tiny TCP forwarder on 127.0.0.1 that a test puts between the service and its database (or WeChat)
and then breaks on purpose, as a network or a database host would break.

    up        bytes flow both ways (the normal state);
    cut()     every open connection is reset and new ones are accepted and reset at once: the
              database host went away (clients fail fast with "connection reset / closed");
    stall()   connections stay open but no byte is relayed, new ones included: a partition or a
              database frozen under load (clients hang until their own timeouts, or until restored);
    restore() back to up; bytes held during a stall are then delivered, in order;
    drop_answer_to_next(marker)
              a one-shot trap: the next client message containing `marker` (b"COMMIT", say) reaches
              the server, and its connection is reset as soon as the server answers, the answer never
              reaching the client: the request was carried out, its acknowledgement lost.

Threads only (one accept loop, two pumps per connection); `close()` stops everything.
"""

from __future__ import annotations

import socket
import struct
import threading


def _reset(sock: socket.socket) -> None:
    """Close `sock` with an RST (linger 0), waking any thread blocked reading it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `upstream`; see the module docstring for the faults."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = False
        self._closed = False
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._trap: tuple[bytes, threading.Event] | None = None
        self._doomed: dict[tuple[socket.socket, socket.socket], threading.Event] = {}
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    # --- faults -----------------------------------------------------------------------------------

    def cut(self) -> None:
        """Reset every open connection and every new one until `restore()`."""
        with self._lock:
            self._refusing = True
            pairs, self._pairs = self._pairs, []
        for client, server in pairs:
            _reset(client)
            _reset(server)

    def stall(self) -> None:
        """Stop relaying bytes (connections stay open) until `restore()`."""
        self._flowing.clear()

    def restore(self) -> None:
        """Accept and relay normally again."""
        with self._lock:
            self._refusing = False
        self._flowing.set()

    def drop_answer_to_next(self, marker: bytes) -> threading.Event:
        """Arm the one-shot trap (module docstring); the event is set once it has fired."""
        fired = threading.Event()
        with self._lock:
            self._trap = (marker, fired)
        return fired

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._closed = True
        self.cut()
        self._flowing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing or self._closed:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, server))
            pair = (client, server)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while not self._flowing.wait(0.05):  # stalled: hold the bytes
                    if not self._live(pair):
                        return
                if not self._live(pair):
                    return
                if self._trapped(src, data, pair):
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(pair)

    def _trapped(self, src: socket.socket, data: bytes, pair: tuple[socket.socket, socket.socket]) -> bool:
        """Arm the trap on the client's marked message; spring it on the server's answer (True: the
        answer was dropped and the connection reset)."""
        client, server = pair
        with self._lock:
            if src is client:
                if self._trap is not None and self._trap[0] in data:
                    self._doomed[pair] = self._trap[1]
                    self._trap = None
                return False
            fired = self._doomed.pop(pair, None)
            if fired is None:
                return False
            self._pairs.remove(pair)
        fired.set()  # before the reset: the client may see it, and the test look, at once
        _reset(client)
        try:
            server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        server.close()
        return True

    def _live(self, pair: tuple[socket.socket, socket.socket]) -> bool:
        with self._lock:
            return pair in self._pairs

    def _drop(self, pair: tuple[socket.socket, socket.socket]) -> None:
        """One side hung up: close both (a FIN, as a proxy does), once."""
        with self._lock:
            if pair not in self._pairs:
                return
            self._pairs.remove(pair)
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
