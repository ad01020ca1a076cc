"""What academy-tui trusts, in code: the steering sessions of this user, kept outside the pool.

Every record of a pool is untrusted (SECURITY.md, R1, R3, R6): anyone who can write a file
into the pool directory can write any record. What a steering agent must be able to prove,
where to reach it and with which key, therefore lives in a *session file* that the steering
agent writes for its own user when it starts:

    $ACADEMY_TUI_STATE_DIR/steering/<agent-uuid>.json      (directory 0700, file 0600)
    (else $XDG_STATE_HOME/academy-tui/..., else ~/.local/state/academy-tui/...)

holding the agent's uuid, the pool it watches, the exchange approvals reach it over, and a
random 256-bit secret. The secret never enters the pool or the exchange. With it the
steering agent signs each of its audit records (HMAC-SHA256 over the record's
``steering.*`` values, its logger and its message: :func:`record_mac`), and a person's
approval carries an HMAC over what is approved (:func:`approval_mac`). A session file is
used only when it is a regular file owned by the reading user and readable by nobody else;
anything else is ignored, with a note saying why.

Pure standard library: no academy, no network.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_ENV = "ACADEMY_TUI_STATE_DIR"
SIG_KEY = "steering.sig"
"""The record key holding a steering record's signature."""
APPROVAL_WINDOW_S = 300.0
"""An approval is accepted this long after (and before, for clock skew) it was made."""
TIME_SLACK_S = 5.0
"""A signed record's own time (``steering.t``) may differ from its ``created`` this much."""
_VERSION = 1


def state_dir() -> Path:
    """``$ACADEMY_TUI_STATE_DIR``, else ``$XDG_STATE_HOME/academy-tui``, else
    ``~/.local/state/academy-tui``."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "academy-tui"


def sessions_dir() -> Path:
    """Where steering session files live."""
    return state_dir() / "steering"


@dataclass(frozen=True)
class Session:
    """One steering agent's session, as its own process wrote it for its user."""

    agent_uuid: str
    """Lower-case uuid of the steering agent; also its session id (``steering.session``)."""
    secret: bytes = field(repr=False)
    pool: str
    """Absolute path of the pool it watches."""
    exchange: str
    """Where approvals reach it: ``redis://H:P``, ``http://H:P``, ``local`` or ``""``."""
    mode: str = ""
    host: str = ""
    pid: int = 0
    started: float = 0.0
    path: Path | None = None
    """The session file."""

    @property
    def pool_uuid(self) -> str:
        return Path(self.pool).name.lower()

    def as_public(self) -> dict[str, Any]:
        """Everything but the secret (for showing)."""
        return {"agent_uuid": self.agent_uuid, "pool": self.pool, "exchange": self.exchange,
                "mode": self.mode, "host": self.host, "pid": self.pid,
                "started": self.started, "path": str(self.path) if self.path else None}


class TrustError(Exception):
    """A session file could not be written or read (one line)."""


def _secure_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise TrustError(f"{path} is not a directory of this user")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def create_session(agent_uuid: str, pool: str | os.PathLike[str], exchange: str,
                   mode: str = "") -> Session:
    """Write a new session file (0600, never over an existing one) and return it."""
    uid = str(uuid.UUID(str(agent_uuid))).lower()
    d = sessions_dir()
    s = Session(uid, secrets.token_bytes(32), str(Path(pool).resolve()), exchange, mode,
                socket.gethostname(), os.getpid(), time.time())
    body = json.dumps({"version": _VERSION, **s.as_public(), "path": None,
                       "secret": s.secret.hex()}, sort_keys=True)
    try:
        _secure_dir(d)
        path = d / f"{uid}.json"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
    except OSError as e:
        raise TrustError(f"cannot write the steering session file in {d}: "
                         f"{e.strerror or e}") from None
    return Session(s.agent_uuid, s.secret, s.pool, s.exchange, s.mode, s.host, s.pid,
                   s.started, path)


def read_session(path: Path) -> Session:
    """One session file, checked: a regular file of this user that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        raise TrustError(f"{path.name}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise TrustError(f"{path.name}: not a regular file")
        if st.st_uid != os.geteuid():
            raise TrustError(f"{path.name}: owned by another user")
        if st.st_mode & 0o077:
            raise TrustError(f"{path.name}: readable by others (mode {st.st_mode & 0o777:o})")
        if st.st_size > 64 * 1024:
            raise TrustError(f"{path.name}: too large for a session file")
        raw = f.read()
    try:
        d = json.loads(raw)
        secret = bytes.fromhex(d["secret"])
        if len(secret) < 16:
            raise ValueError("short secret")
        return Session(str(uuid.UUID(str(d["agent_uuid"]))).lower(), secret, str(d["pool"]),
                       str(d.get("exchange") or ""), str(d.get("mode") or ""),
                       str(d.get("host") or ""), int(d.get("pid") or 0),
                       float(d.get("started") or 0.0), path)
    except (ValueError, KeyError, TypeError) as e:
        raise TrustError(f"{path.name}: not a session file ({e})") from None


def load_sessions(pool_uuid: str | None = None) -> tuple[list[Session], list[str]]:
    """This user's steering sessions (of the pool named ``pool_uuid``, when given), newest
    first, and a note per session file that was ignored."""
    d = sessions_dir()
    out: list[Session] = []
    notes: list[str] = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return out, notes
    with contextlib.suppress(OSError):
        st = d.lstat()
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return out, [f"{d} is writable by others or not yours: its sessions are ignored"]
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            s = read_session(d / name)
        except TrustError as e:
            notes.append(f"session file ignored: {e}")
            continue
        if pool_uuid is None or s.pool_uuid == pool_uuid.lower():
            out.append(s)
    out.sort(key=lambda s: s.started, reverse=True)
    return out, notes


# -- signatures ------------------------------------------------------------------------------


def record_payload(fields: Mapping[str, Any], logger: str, message: str) -> bytes:
    """The bytes a steering record's signature covers: its ``steering.*`` values as the
    pool holds them (``str()`` of each), its logger name and its message."""
    items = sorted((str(k), str(v)) for k, v in fields.items()
                   if str(k).startswith("steering.") and k != SIG_KEY)
    return json.dumps([items, str(logger), str(message)], ensure_ascii=True,
                      separators=(",", ":")).encode()


def record_mac(secret: bytes, fields: Mapping[str, Any], logger: str, message: str) -> str:
    """The signature of one steering record (hex)."""
    return hmac.new(secret, record_payload(fields, logger, message), hashlib.sha256).hexdigest()


def record_ok(secret: bytes, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` (raw, as written) carries a valid signature under ``secret``."""
    sig = record.get(SIG_KEY)
    if not isinstance(sig, str) or len(sig) != 64:
        return False
    want = record_mac(secret, record, str(record.get("name", "")),
                      str(record.get("message", "")))
    return hmac.compare_digest(sig, want)


def suggestion_digest(target_uuid: Any, action: Any, args_json: Any) -> str:
    """What an approval is about: the call (target agent uuid, action, arguments as the
    pool holds them: JSON with sorted keys)."""
    text = f"{str(target_uuid).lower()}\n{action}\n{args_json}"
    return hashlib.sha256(text.encode()).hexdigest()


def args_json(args: Any) -> str:
    """Call arguments as a steering record holds them."""
    return json.dumps(args, sort_keys=True, default=str)


def approval_mac(secret: bytes, verb: str, session: str, suggestion: str, digest: str,
                 ts: float, nonce: str) -> str:
    msg = "\n".join(("academy-tui approval v1", verb, session.lower(), suggestion, digest,
                     repr(float(ts)), nonce))
    return hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()


def make_approval(session: Session, verb: str, suggestion: str, digest: str,
                  now: float | None = None) -> dict[str, Any]:
    """The proof a person's ``approve``/``reject`` carries (plain JSON values)."""
    ts = time.time() if now is None else now
    nonce = secrets.token_hex(16)
    return {"session": session.agent_uuid, "ts": ts, "nonce": nonce, "digest": digest,
            "mac": approval_mac(session.secret, verb, session.agent_uuid, suggestion, digest,
                                ts, nonce)}


class ApprovalCheck:
    """The steering agent's side: checks proofs, remembers nonces (no replay)."""

    def __init__(self, session: str, secret: bytes | None) -> None:
        self.session = session.lower()
        self.secret = secret
        self._seen: dict[str, float] = {}

    def why_not(self, verb: str, suggestion: str, digest: str, proof: Any,
                now: float | None = None) -> str | None:
        """``None`` when ``proof`` authorises ``verb`` of ``suggestion`` whose call has
        ``digest``; else why not (said to the caller and audited)."""
        if self.secret is None:
            return "this steering agent has no session key: approvals are off"
        if not isinstance(proof, Mapping):
            return "no proof of who approves (approve from the user's own academy-tui)"
        now = time.time() if now is None else now
        ts, nonce, mac = proof.get("ts"), proof.get("nonce"), proof.get("mac")
        if not (isinstance(ts, int | float) and not isinstance(ts, bool)
                and isinstance(nonce, str) and isinstance(mac, str) and len(nonce) <= 64):
            return "malformed proof"
        if str(proof.get("session", "")).lower() != self.session:
            return "the proof is for another steering session"
        if abs(now - float(ts)) > APPROVAL_WINDOW_S:
            return "the proof is too old or from the future"
        if proof.get("digest") != digest:
            return "the proof is for another call than this suggestion's"
        want = approval_mac(self.secret, verb, self.session, suggestion, digest, float(ts),
                            nonce)
        if not hmac.compare_digest(mac, want):
            return "bad proof"
        for n, t in list(self._seen.items()):
            if now - t > 2 * APPROVAL_WINDOW_S:
                del self._seen[n]
        if nonce in self._seen:
            return "this proof was used already"
        self._seen[nonce] = now
        return None


def by_session(sessions: Iterable[Session]) -> dict[str, Session]:
    """Sessions keyed by their (lower-case) agent uuid."""
    return {s.agent_uuid: s for s in sessions}


__all__ = ["SIG_KEY", "ApprovalCheck", "Session", "TrustError", "args_json", "by_session",
           "create_session", "load_sessions", "make_approval", "read_session", "record_mac",
           "record_ok", "sessions_dir", "state_dir", "suggestion_digest"]
