"""Put on PYTHONPATH of a child process to make any internet connection attempt fatal.

Used by the subprocess tests (CLI, frozen app) to prove the program never touches the network.
"""

import os
import socket
import sys

_real_connect = socket.socket.connect


def _blocked(*args, **kwargs):
    sys.stderr.write(f"NETWORK ACCESS BLOCKED: {args!r}\n")
    sys.stderr.flush()
    os._exit(97)


def _connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _real_connect(self, address)
    _blocked(address)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect
socket.create_connection = _blocked
socket.getaddrinfo = _blocked
