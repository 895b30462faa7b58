"""A real IMAP server for the tests: Dovecot from Debian's packages, in a temporary directory.

Each server gets its own configuration, mail (Maildir), password file, self-signed certificate
(made with openssl) and two ports the OS found free: plain IMAP (plain-text logins allowed, as
only a test may) and IMAP over TLS. Mail is delivered into it by IMAP APPEND, as any client
would. Dovecot runs in the foreground and is stopped when the test ends.

When Dovecot is not installed the email tests are skipped with a warning; with
HOLDING_REPLY_REQUIRE_DOVECOT=1 (as .ci/run sets) they fail instead.
"""

from __future__ import annotations

import contextlib
import getpass
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
REQUIRED = os.environ.get("HOLDING_REPLY_REQUIRE_DOVECOT") == "1"
USER = "council@example.org"
PASSWORD = "mailbox-password"


def require() -> None:
    problem = None
    if not os.path.exists(DOVECOT):
        problem = "Dovecot is not installed (apt-get install -y dovecot-imapd)"
    elif shutil.which("openssl") is None:
        problem = "openssl is not installed"
    if problem is None:
        return
    if REQUIRED:
        pytest.fail(f"{problem} (HOLDING_REPLY_REQUIRE_DOVECOT=1: the email tests must run)")
    warnings.warn(f"{problem}: the email tests are SKIPPED", stacklevel=2)
    pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    root: Path
    port: int  # plain IMAP
    tls_port: int  # IMAP over TLS, with the certificate in `cert`
    cert: Path
    process: subprocess.Popen[bytes] | None = None
    user: str = USER
    password: str = PASSWORD

    def env(self, tls: bool = False) -> dict[str, str]:
        """The IMAP_* variables that point Holding Reply at this mailbox."""
        return {
            "IMAP_HOST": "127.0.0.1",
            "IMAP_PORT": str(self.tls_port if tls else self.port),
            "IMAP_TLS": "1" if tls else "0",
            "IMAP_USERNAME": self.user,
            "IMAP_PASSWORD": self.password,
            "IMAP_FOLDER": "INBOX",
        }

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, at: datetime | None = None, folder: str = "INBOX") -> None:
        """Deliver one mail, as a mail server would put it in the mailbox."""
        when = imaplib.Time2Internaldate(at or time.time())
        client = self.connect()
        try:
            status, data = client.append(folder, "", when, raw)
            assert status == "OK", data
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> list[bytes]:
        """Every mail's flags, to check that reading them changed nothing."""
        client = self.connect()
        try:
            client.select(folder, readonly=True)
            _status, data = client.uid("FETCH", "1:*", "(FLAGS)")
            return [d for d in data if isinstance(d, bytes)]
        finally:
            client.logout()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = holding-reply-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login {extra_mechanisms}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_location = maildir:{root}/mail/%n
first_valid_uid = 1
first_valid_gid = 1
mail_uid = {uid}
mail_gid = {gid}
default_login_user = {login_user}
default_internal_user = {internal_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
{extra_passdb}
userdb {{
  driver = static
  args = home={root}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service auth {{
  user = {worker_user}
}}
service auth-worker {{
  user = {worker_user}
}}
"""

OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
"""


def start(root: Path, introspection_url: str | None = None) -> Dovecot:
    """A running Dovecot in `root`. With introspection_url, it also takes OAuth 2.0 logins
    (XOAUTH2, OAUTHBEARER) and asks that URL (RFC 7662 token introspection) whose token it is."""
    require()
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(exist_ok=True)
    # Dovecot never reads mail as root: as root, the mail belongs to Dovecot's own user, and
    # `root` must be a directory that user can pass through (see the fixture).
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        uid, gid = pwd.getpwnam("dovecot").pw_uid, pwd.getpwnam("dovecot").pw_gid
        for sub in ("mail", "home"):
            os.chown(root / sub, uid, gid)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
    extra_passdb = extra_mechanisms = ""
    if introspection_url is not None:
        (root / "oauth2.conf.ext").write_text(
            f"introspection_mode = post\nintrospection_url = {introspection_url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n",
            encoding="utf-8",
        )
        extra_passdb = OAUTH2_PASSDB.format(root=root)
        extra_mechanisms = "xoauth2 oauthbearer"
    port, tls_port = free_port(), free_port()
    (root / "dovecot.conf").write_text(
        CONFIG.format(
            root=root,
            port=port,
            tls_port=tls_port,
            uid=uid,
            gid=gid,
            # As root, Dovecot's own users (from the package) log in and run the IMAP side, but
            # only root can read the test's 0700 temporary directory. As anyone else, everything
            # runs as that user.
            login_user="dovenull" if os.getuid() == 0 else getpass.getuser(),
            internal_user="dovecot" if os.getuid() == 0 else getpass.getuser(),
            worker_user=getpass.getuser(),
            extra_passdb=extra_passdb,
            extra_mechanisms=extra_mechanisms,
        ),
        encoding="utf-8",
    )
    server = Dovecot(root, port, tls_port, root / "cert.pem")
    server.process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    break
        except OSError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            stderr = server.process.stderr.read().decode() if server.process.stderr else ""
            raise RuntimeError(f"Dovecot did not start:\n{stderr}\n{log}")
        time.sleep(0.05)
    return server


@contextlib.contextmanager
def directory() -> Iterator[Path]:
    """A temporary directory Dovecot's own users can pass through (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="holding-reply-dovecot-"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running(introspection_url: str | None = None) -> Iterator[Dovecot]:
    with directory() as root:
        server = start(root, introspection_url)
        try:
            yield server
        finally:
            server.stop()


def mail(
    text: str = "My bin wasn't emptied this week.",
    *,
    sender: str = "Jo Bloggs <jo@example.net>",
    subject: str = "Missed bin",
    message_id: str | None = "<first@example.net>",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain-text mail as a person's mail client would send it."""
    lines = [f"From: {sender}", f"To: {USER}", f"Subject: {subject}",
             "Date: Fri, 27 Nov 2026 20:00:00 +0000"]  # fmt: skip
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "",
              text.replace("\n", "\r\n"), ""]  # fmt: skip
    return "\r\n".join(lines).encode()
