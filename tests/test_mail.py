"""bot.mail: what triage reads from a mail, which mail may be answered, and the threaded reply."""

from __future__ import annotations

import pytest

from bot.mail import MAX_REFERENCES, automatic, html_to_text, parse, reply, trim

OURS = frozenset({"contact@anytown.gov.uk"})


def raw(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip().replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Hello\n\n> quoted\n> more\nThanks", "Hello\n\nThanks"),
        ("Bin missed.\n\nOn Mon, 2 Nov 2026 at 09:00, Council <c@x> wrote:\n> old", "Bin missed."),
        ("Bin missed.\n-- \nJo Bloggs\n01234 567890", "Bin missed."),
        ("Bin missed.\n\n-----Original Message-----\nFrom: x", "Bin missed."),
        ("Bin missed.\n\nFrom: Council <c@x>\nSent: 2 November 2026\nTo: me", "Bin missed."),
        ("From: 9am tomorrow the road is shut?\nIs that right?",
         "From: 9am tomorrow the road is shut?\nIs that right?"),  # not a header block
        ("Bin missed.\n\nSent from my iPhone", "Bin missed."),
        ("Bin wedi'i fethu.\n\nAr ddydd Llun, 2 Tach 2026, ysgrifennodd Cyngor:\n> hen",
         "Bin wedi'i fethu."),
        ("> only quoted text", "> only quoted text"),  # nothing new: keep it all
    ],
)  # fmt: skip
def test_quoted_history_and_signatures_are_trimmed(text: str, kept: str) -> None:
    assert trim(text) == kept


def test_html_becomes_text() -> None:
    markup = (
        "<html><head><title>x</title><style>p {color: red}</style></head><body>"
        "<p>Flooding on&nbsp;Mill Lane</p><div>Water&#39;s rising<br>fast</div>"
        "<script>alert(1)</script><blockquote>earlier mail</blockquote></body></html>"
    )
    assert html_to_text(markup) == "Flooding on Mill Lane\n\nWater's rising\nfast"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ("From: jo@example.net", None),
        ("From: jo@example.net\nAuto-Submitted: no", None),
        ("From: jo@example.net\nAuto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("From: jo@example.net\nAuto-Submitted: auto-notified; owner-email=x@y", "auto-notified"),
        ("From: jo@example.net\nPrecedence: Bulk", "Precedence: bulk"),
        ("From: jo@example.net\nPrecedence: first-class", None),
        ("From: jo@example.net\nList-Id: Residents <res.example.net>", "List-Id"),
        ("From: jo@example.net\nList-Unsubscribe: <https://x/u>", "List-Unsubscribe"),
        ("From: jo@example.net\nReturn-Path: <>", "empty return path"),
        ("From: jo@example.net\nReturn-Path: <jo@example.net>", None),
        ("From: Contact <CONTACT@anytown.gov.uk>", "our own address"),
        ("From: no-reply@shop.example", "a no-reply address"),
        ("From: MAILER-DAEMON@mx.example", "a no-reply address"),
        ("From: residents-request@lists.example", "a no-reply address"),
        ("Subject: no sender", "no sender address"),
        ("From: jo@example.net\nContent-Type: multipart/report; report-type=delivery-status;"
         ' boundary="b"', "delivery or read report"),
    ],
)  # fmt: skip
def test_what_must_not_be_answered(headers: str, why: str | None) -> None:
    mail = parse(raw(headers), OURS)
    if why is None:
        assert mail.automatic is None and mail.reply_address == "jo@example.net"
    else:
        assert mail.automatic is not None and why in mail.automatic
        assert mail.reply_address is None  # nowhere for anyone to reply to


@pytest.mark.parametrize(
    ("value", "suppressed"),
    [("All", True), ("OOF, AutoReply", True), ("oof", True), ("DR, RN, NRN", False)],
)
def test_x_auto_response_suppress(value: str, suppressed: bool) -> None:
    mail = parse(raw(f"From: jo@example.net\nX-Auto-Response-Suppress: {value}"), OURS)
    assert (mail.suppress is not None) is suppressed
    assert mail.reply_address == "jo@example.net"  # a person: the team may still answer


def test_the_reply_threads_and_says_it_is_automatic() -> None:
    original = parse(
        raw(
            "From: Jo <jo@example.net>\nReply-To: jo.home@example.net\nSubject: Re: Bins\n"
            "Message-ID: <3@example.net>\nReferences: <1@x> <2@x>\nIn-Reply-To: <2@x>"
        ),
        OURS,
    )
    assert original.reply_address == "jo.home@example.net"
    assert original.references == ("<1@x>", "<2@x>", "<3@example.net>")
    message = reply(
        original,
        sender="contact@anytown.gov.uk",
        to="jo.home@example.net",
        text="Thank you.",
        automatic=True,
        in_reply_to="<3@example.net>",
    )
    assert message["Subject"] == "Re: Bins"  # not "Re: Re: Bins"
    assert message["In-Reply-To"] == "<3@example.net>"
    assert message["References"] == "<1@x> <2@x> <3@example.net>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Message-ID"].endswith("@anytown.gov.uk>")
    human = reply(original, sender="contact@anytown.gov.uk", to="jo.home@example.net",
                  text="We will.", automatic=False, in_reply_to="<3@example.net>")  # fmt: skip
    assert human["Auto-Submitted"] is None


def test_a_long_thread_keeps_its_root_and_latest_references() -> None:
    chain = " ".join(f"<{n}@x>" for n in range(30))
    original = parse(raw(f"From: jo@x.org\nMessage-ID: <30@x>\nReferences: {chain}"), OURS)
    message = reply(original, sender="c@a.org", to="jo@x.org", text="Hi", automatic=True,
                    in_reply_to="<30@x>")  # fmt: skip
    ids = message["References"].split()
    assert len(ids) == MAX_REFERENCES and ids[0] == "<0@x>" and ids[-1] == "<30@x>"


def test_a_reply_without_the_original_still_threads() -> None:
    message = reply(None, sender="c@a.org", to="jo@x.org", text="Hi", automatic=True,
                    in_reply_to="<30@x>")  # fmt: skip
    assert message["Subject"] == "Re: your message"
    assert message["In-Reply-To"] == message["References"] == "<30@x>"


def test_encoded_headers_and_an_unknown_charset() -> None:
    mail = parse(
        raw(
            "From: =?utf-8?q?Si=C3=A2n_Jones?= <sian@example.net>\n"
            "Subject: =?utf-8?q?Bin_wedi=E2=80=99i_fethu?=\n"
            "Content-Type: text/plain; charset=x-unknown",
            "Helo",
        ),
        OURS,
    )
    assert mail.sender_name == "Siân Jones" and mail.subject == "Bin wedi’i fethu"
    assert mail.text == "Bin wedi’i fethu\n\nHelo"


def test_direct_automatic_check() -> None:
    from email import message_from_bytes, policy

    message = message_from_bytes(raw("From: a@b.c\nAuto-Submitted: auto-generated"),
                                 policy=policy.default)  # fmt: skip
    assert automatic(message, "a@b.c", OURS) == "automatic mail (Auto-Submitted: auto-generated)"  # type: ignore[arg-type]
