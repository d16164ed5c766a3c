"""In-memory TLS handshakes (ssl.MemoryBIO) against the real OpenSSL, shared by the certificate tests.

No sockets: the two sides' records are carried by hand, so a test sees exactly what a client
would (which certificate is presented, which versions are accepted) without a listening server.
"""

from __future__ import annotations

import ssl

# (client in, client out, server in, server out)
Bios = tuple[ssl.MemoryBIO, ssl.MemoryBIO, ssl.MemoryBIO, ssl.MemoryBIO]


def new_bios() -> Bios:
    return ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()


def pump(client: ssl.SSLObject, server: ssl.SSLObject, bios: Bios) -> None:
    """Step both sides of the handshake, carrying each side's output to the other, until both finish."""
    c_in, c_out, s_in, s_out = bios
    for _ in range(10):
        done = 0
        for side, out, peer_in in ((client, c_out, s_in), (server, s_out, c_in)):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
            peer_in.write(out.read())
        if done == 2:
            return
    raise AssertionError("handshake did not finish")


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, server_hostname: str) -> ssl.SSLObject:
    """A completed handshake of a new connection; returns the client's side. Raises what OpenSSL raises."""
    bios = new_bios()
    client = client_ctx.wrap_bio(bios[0], bios[1], server_hostname=server_hostname)
    server = server_ctx.wrap_bio(bios[2], bios[3], server_side=True)
    pump(client, server, bios)
    return client
