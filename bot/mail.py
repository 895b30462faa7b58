"""A mail, read and answered: the text triage reads, whether it may be answered (RFC 3834), and
the reply that threads under it. Pure functions of the raw message; no network here.

What triage reads is the plain-text part (or the HTML part turned to text), with the quoted
history and the signature trimmed, and the subject on the first line; attachments are listed
after it. The raw message itself is kept for the team (Message.original).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from html.parser import HTMLParser

MAX_TEXT = 4000  # what triage and the queue get; the original keeps the rest
MAX_REFERENCES = 10  # message ids carried in References (RFC 5322 allows trimming the middle)

_PARSER = BytesParser(policy=policy.default)
_NO_REPLY = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|noreply-.*|bounces?(\+.*)?|"
    r"owner-.*|.*-request|.*-bounces?)$",
    re.IGNORECASE,
)
# Where a reply's quoted history begins: Outlook's block, Gmail's and Apple's "On ... wrote:",
# the Welsh "Ar ... ysgrifennodd:", and the lines of dashes or underscores clients draw.
_HISTORY = re.compile(
    r"^\s*(-{2,}\s*Original Message\s*-{2,}|_{10,}|Sent from my .*|"
    r"Get Outlook for .*|On .{5,200}wrote:\s*|Ar .{5,200}ysgrifennodd.{0,200}:\s*)$",
    re.IGNORECASE,
)
_OUTLOOK = re.compile(r"^\s*\*?From:\*?\s.*$", re.IGNORECASE)  # then "Sent:" or "Date:"
_SIGNATURE = "-- "  # RFC 3676: the line that starts a signature
_BLANKS = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Mail:
    """What the email channel needs from one received mail."""

    message_id: str | None  # "<id@host>", or None when the mail has none
    sender: str  # the From address, lower case: who the cooldown is for
    sender_name: str | None
    reply_address: str | None  # Reply-To, else From; None when there is nobody to answer
    subject: str
    text: str  # for triage and the queue
    references: tuple[str, ...]  # the thread so far, ending with this mail's own id
    automatic: str | None  # why no reply may go (RFC 3834 and the like), or None
    suppress: str | None  # the sender asked for no automatic replies (X-Auto-Response-Suppress)


class _Text(HTMLParser):
    """HTML to plain text: paragraphs and breaks kept as lines, scripts and styles dropped."""

    _BREAKS = frozenset(("br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag == "blockquote":  # quoted history, as most clients mark it in HTML
            self._quoted += 1
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._quoted:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def trim(text: str) -> str:
    """The new part of a message: no quoted history (lines with ">", or everything after
    "On ... wrote:" and Outlook's header block) and no signature (after "-- ")."""
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for number, line in enumerate(lines):
        if line == _SIGNATURE or line.rstrip() == "--" or _HISTORY.match(line):
            break
        after = lines[number + 1].strip().lstrip("*").lower() if number + 1 < len(lines) else ""
        if _OUTLOOK.match(line) and after.startswith(("sent:", "date:")):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    trimmed = _BLANKS.sub("\n\n", "\n".join(kept)).strip()
    return trimmed or text.strip()  # all of it was "history": then keep it all


def _size(count: int) -> str:
    return f"{count / 1_048_576:.1f} MB" if count >= 1_048_576 else f"{max(1, count // 1024)} KB"


def _attachments(message: EmailMessage) -> list[str]:
    notes = []
    for part in message.iter_attachments():
        name = part.get_filename() or part.get_content_type()
        try:
            payload = part.get_payload(decode=True)
            size = f" ({_size(len(payload))})" if isinstance(payload, bytes) else ""
        except (LookupError, ValueError):
            size = ""
        notes.append(f"[attachment: {name}{size}]")
    return notes


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: the bytes, as well as they read
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content


def _address(value: str | None) -> tuple[str | None, str | None]:
    """(name, address) of the first address in a header, the address in lower case."""
    if not value:
        return None, None
    found = getaddresses([str(value)])
    name, address = found[0] if found else parseaddr(str(value))
    address = address.strip().lower()
    if "@" not in address:
        return None, None
    return (name.strip() or None), address


def _ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", str(value or ""))


def automatic(message: EmailMessage, sender: str | None, ours: frozenset[str]) -> str | None:
    """Why this mail must get no automatic reply (RFC 3834 section 2 and common practice), or
    None. Each of these is a machine, a list, or ourselves: answering could start a loop."""
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"automatic mail (Auto-Submitted: {auto.split(';')[0].strip()})"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"bulk or list mail (Precedence: {precedence})"
    for header in ("List-Id", "List-Unsubscribe"):
        if message.get(header) is not None:
            return f"mailing list ({header})"
    return_path = message.get("Return-Path")
    if return_path is not None and str(return_path).strip() in ("<>", ""):
        return "empty return path (a bounce or a notification)"
    if message.get_content_type() == "multipart/report":
        return "delivery or read report"
    if sender is None:
        return "no sender address"
    if sender in ours:
        return "our own address"
    if _NO_REPLY.match(sender.partition("@")[0]):
        return "a no-reply address"
    return None


def suppressed(message: EmailMessage) -> str | None:
    """Microsoft's X-Auto-Response-Suppress: All, OOF or AutoReply ask for no automatic reply
    (DR, NDR, RN and NRN only turn off delivery and read receipts, which we never send)."""
    value = message.get("X-Auto-Response-Suppress")
    if value is None:
        return None
    words = {w.strip().lower() for w in re.split(r"[,\s]+", str(value)) if w.strip()}
    if words & {"all", "oof", "autoreply"}:
        return f"the sender asked for no automatic replies (X-Auto-Response-Suppress: {value})"
    return None


def parse(raw: bytes, ours: frozenset[str] = frozenset()) -> Mail:
    """Read one raw mail. `ours`: our own addresses, in lower case."""
    message = _PARSER.parsebytes(raw)
    assert isinstance(message, EmailMessage)
    name, sender = _address(message.get("From"))
    _, reply_to = _address(message.get("Reply-To"))
    subject = " ".join(str(message.get("Subject", "")).split())
    ids = _ids(message.get("Message-ID"))
    own = ids[0] if ids else None
    history = _ids(message.get("References")) or _ids(message.get("In-Reply-To"))
    body = trim(_body(message))
    notes = _attachments(message)
    text = "\n\n".join(p for p in (subject, body, " ".join(notes)) if p) or "[empty mail]"
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    why = automatic(message, sender, ours)
    return Mail(
        message_id=own,
        sender=sender or "",
        sender_name=name,
        reply_address=None if why else (reply_to or sender),
        subject=subject,
        text=text,
        references=tuple([*history, own] if own else history),
        automatic=why,
        suppress=suppressed(message),
    )


def reply(
    original: Mail | None,
    *,
    sender: str,
    to: str,
    text: str,
    automatic: bool,
    in_reply_to: str | None,
) -> EmailMessage:
    """The reply to a mail, in its thread (In-Reply-To and References, RFC 5322 section 3.6.4).
    An automatic one says so (Auto-Submitted: auto-replied, RFC 3834), and asks Microsoft's
    servers not to answer it with an out-of-office."""
    message = EmailMessage()
    subject = original.subject if original is not None else ""
    if not re.match(r"^(re|aw|ateb)\s*:", subject, re.IGNORECASE):
        subject = f"Re: {subject}" if subject else "Re: your message"
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = Address(addr_spec=to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    parent = in_reply_to or (original.message_id if original is not None else None)
    if parent:
        message["In-Reply-To"] = parent
        chain = list(original.references) if original is not None else []
        if not chain or chain[-1] != parent:
            chain.append(parent)
        if len(chain) > MAX_REFERENCES:  # keep the first (the thread's root) and the latest
            chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
        message["References"] = " ".join(chain)
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text.strip() + "\n")
    return message
