"""Serve an ASGI app with uvicorn over TLS 1.2+, picking up rotated certificate files live.

uvicorn builds its SSLContext once. We hand it our own context through `ssl_context_factory`
and keep a reference: when the certificate files change we call `load_cert_chain` again on
that same context. OpenSSL copies the certificate and key into each connection when the
connection is created, so open connections (and requests in flight on them) keep the old
certificate and only new handshakes see the new one. The reload runs on the event-loop thread,
the thread that performs handshakes, so no handshake ever sees half of a reload.

Mounted Secrets and `knscale certs` give no change events, so the files are polled by hash.
A pair that does not match (a writer replaced the key but not yet the certificate) is skipped
until the next poll; the context keeps serving the last good pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import logging
import os
import shutil
import signal
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import uvicorn
from cryptography import x509
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook.connections import TLS_HANDSHAKE_TIMEOUT_S, HeadSizeLimit, gated_loop_factory

log = logging.getLogger("knscale.server")

TLSMinVersion = Literal["1.2", "1.3"]
_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are fixed by OpenSSL.
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!SHA1"


class CertificateLoadError(Exception):
    """The certificate files cannot be served; the message names the files and the reason."""


class ServerSetupError(Exception):
    """The server cannot start as configured; the message says what is missing and how to fix it."""


def require_fast_paths() -> None:
    """uvloop and httptools, or a clear error.

    uvicorn's "auto" would silently fall back to asyncio and h11, several times slower per request,
    and the webhook's latency targets assume the fast paths; so they are required, not guessed.
    """
    missing = []
    for name in ("uvloop", "httptools"):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    if missing:
        raise ServerSetupError(
            f"cannot serve: {'; '.join(missing)} not importable; install knscale's dependencies "
            "(pip install 'uvicorn[standard]')"
        )


def new_server_context(min_version: TLSMinVersion = "1.2") -> ssl.SSLContext:
    """A server context with no certificate yet: TLS >= min_version, HTTP/1.1 only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[min_version]
    ctx.set_ciphers(_TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    # The API server speaks HTTP/1.1 to webhooks; advertising h2 would invite a protocol uvicorn
    # does not serve (and knative keeps HTTP/2 off for CVE-2023-44487).
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _not_after(cert_pem: bytes) -> float | None:
    """notAfter of the first certificate (the leaf) as a Unix time, for the expiry metric."""
    try:
        return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc.timestamp()
    except ValueError:
        return None


def _der_fingerprint(cert_pem: bytes) -> str:
    text = cert_pem.decode("ascii", errors="replace")
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        return "?"
    der = ssl.PEM_cert_to_DER_cert(text[start : end + len("-----END CERTIFICATE-----")])
    return hashlib.sha256(der).hexdigest()


@dataclass
class ReloadingCertificate:
    """One SSLContext that always serves the newest valid pair found in two files."""

    cert_file: Path
    key_file: Path
    min_version: TLSMinVersion = "1.2"
    context: ssl.SSLContext = field(init=False)
    reloads: int = field(default=0, init=False)
    fingerprint: str | None = field(default=None, init=False)
    not_after: float | None = field(default=None, init=False)
    last_error: str | None = field(default=None, init=False)
    _digest: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.context = new_server_context(self.min_version)

    @property
    def loaded(self) -> bool:
        return self._digest is not None

    def _read(self) -> tuple[bytes, bytes]:
        try:
            return self.cert_file.read_bytes(), self.key_file.read_bytes()
        except OSError as exc:
            raise CertificateLoadError(f"cannot read {exc.filename}: {exc.strerror}") from None

    def _load_pair(self, cert: bytes, key: bytes) -> None:
        # Never try a pair on the live context: handed a certificate that does not match its
        # current key, OpenSSL drops that key, and a failing load would leave the context unable
        # to handshake. load_cert_chain reads paths and the files may change between reads, so
        # copy the exact bytes we hashed into a private directory, prove the pair in a scratch
        # context, then load those same bytes into the live one.
        tmpdir = tempfile.mkdtemp(prefix="knscale-tls-")
        try:
            cert_path = Path(tmpdir, "tls.crt")
            key_path = Path(tmpdir, "tls.key")
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            try:
                # password=: an encrypted key fails here instead of OpenSSL prompting on the
                # terminal (which would block the event loop); it raises a bare OSError then.
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
                    cert_path, key_path, password=_NO_PASSWORD
                )
            except (ssl.SSLError, ValueError, OSError) as exc:
                raise CertificateLoadError(
                    f"{self.cert_file} and {self.key_file} are not a usable certificate/key pair "
                    f"(the key must not be encrypted): {exc}"
                ) from None
            self.context.load_cert_chain(cert_path, key_path, password=_NO_PASSWORD)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def load(self) -> None:
        """First load; raises CertificateLoadError so start-up can fail with a clear message."""
        cert, key = self._read()
        self._load_pair(cert, key)
        self._digest = hashlib.sha256(cert + b"\0" + key).hexdigest()
        self.fingerprint = _der_fingerprint(cert)
        self.not_after = _not_after(cert)
        self.last_error = None

    def reload_if_changed(self) -> bool:
        """Poll step: load the files again if their bytes changed. Never raises (the poller also
        guards against it: one failure must not end rotation for the life of the process)."""
        try:
            cert, key = self._read()
        except CertificateLoadError as exc:
            self._note_error(str(exc))
            return False
        digest = hashlib.sha256(cert + b"\0" + key).hexdigest()
        if digest == self._digest:
            return False
        try:
            self._load_pair(cert, key)
        except CertificateLoadError as exc:
            self._note_error(f"{exc}; still serving the previous certificate")
            return False
        self._digest = digest
        self.fingerprint = _der_fingerprint(cert)
        self.not_after = _not_after(cert)
        self.reloads += 1
        self.last_error = None
        log.info("serving certificate reloaded from %s (sha256 %s)", self.cert_file, self.fingerprint)
        return True

    def _note_error(self, message: str) -> None:
        if message != self.last_error:  # log a persistent problem once, not every poll
            log.warning("%s", message)
        self.last_error = message


def _no_password() -> bytes:
    raise ValueError("the key is encrypted")


_NO_PASSWORD = _no_password

# The API server waits at most the webhook's timeoutSeconds (knscale registers 5 s): a request whose
# head takes longer than this is not one it sent, and holding it costs memory (slowloris).
REQUEST_HEAD_TIMEOUT_S = 10.0
MAX_CONCURRENCY = 1000


class DeadlineHttpToolsProtocol(HeadSizeLimit, HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit on each request head.

    uvicorn bounds only the idle time after a response (timeout_keep_alive): a connection that
    sends its headers a byte at a time, or nothing after the TLS handshake, would stay open for
    ever. Here the head must be complete REQUEST_HEAD_TIMEOUT_S after the connection opened or
    after the previous response; the body is bounded by the app (webhook.app.read_bounded_body).
    """

    request_head_timeout = REQUEST_HEAD_TIMEOUT_S
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.request_head_timeout, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """Blocking work (Kubernetes calls, certificate renewal) run in a thread every `interval` s."""

    name: str
    interval: float
    run: Callable[[], object]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    cert_poll_interval: float = 2.0
    graceful_timeout: float = 20.0
    log_level: str = "info"
    access_log: bool = False


class WebhookServer:
    """uvicorn + the certificate poller + periodic jobs, with readiness and graceful shutdown."""

    def __init__(
        self,
        app_factory: Callable[[Callable[[], bool]], Any],
        certificate: ReloadingCertificate,
        options: ServerOptions,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        require_fast_paths()
        self.certificate = certificate
        self.options = options
        self.jobs = tuple(jobs)
        config = uvicorn.Config(
            app_factory(self.ready),
            host=options.host,
            port=options.port,
            http=DeadlineHttpToolsProtocol,
            # Each connection costs ~50 kB; beyond this many, new requests get 503 at once.
            limit_concurrency=MAX_CONCURRENCY,
            loop="uvloop",
            ssl_context_factory=self._ssl_context,
            timeout_graceful_shutdown=max(1, round(options.graceful_timeout)),
            log_level=options.log_level,
            access_log=options.access_log,
            # knscale serve configures logging itself (knscale.logs, text or JSON); uvicorn's own
            # handlers would print its lines in another format beside them.
            log_config=None,
            server_header=False,
            proxy_headers=False,
            lifespan="auto",
        )
        self.server = uvicorn.Server(config)

    def _ssl_context(self, config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        if not self.certificate.loaded:
            self.certificate.load()
        return self.certificate.context

    def ready(self) -> bool:
        """Serving with a loaded certificate and not shutting down."""
        return self.server.started and self.certificate.loaded and not self.server.should_exit

    async def _poll_certificate(self) -> None:
        while True:
            await asyncio.sleep(self.options.cert_poll_interval)
            try:
                self.certificate.reload_if_changed()
            except Exception:  # a bug must not stop every later rotation
                log.exception("certificate reload failed; polling goes on")

    async def _run_job(self, job: PeriodicJob) -> None:
        while True:
            await asyncio.sleep(job.interval)
            started = time.monotonic()
            try:
                await asyncio.to_thread(job.run)
            except Exception as exc:  # a failed round is retried next interval, never fatal
                log.warning("%s failed: %s", job.name, exc)
            else:
                log.debug("%s done in %.3fs", job.name, time.monotonic() - started)

    async def serve(self) -> None:
        tasks = [asyncio.create_task(self._poll_certificate(), name="cert-poll")]
        tasks += [asyncio.create_task(self._run_job(job), name=job.name) for job in self.jobs]
        try:
            await self.server.serve()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def run(self) -> None:
        """Block until SIGTERM/SIGINT; in-flight requests finish (up to graceful_timeout)."""
        # uvicorn re-raises the captured signal after its graceful shutdown; a no-op SIGTERM
        # handler makes that a clean exit (status 0) instead of death by signal.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            # Every accepted socket is counted in the cap and must finish TLS within the
            # handshake deadline (webhook.connections).
            base = self.server.config.get_loop_factory() or asyncio.new_event_loop
            loop_factory = gated_loop_factory(base, MAX_CONCURRENCY, TLS_HANDSHAKE_TIMEOUT_S)
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(self.serve())
        finally:
            signal.signal(signal.SIGTERM, previous)
