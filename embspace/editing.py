"""Who may edit (annotations, tours): on one's own machine everyone, as before; on a hosted deployment only the
lab, recognised by a signed-in e-mail named in EMBSPACE_EDITORS or by the lab's passphrase
(EMBSPACE_EDIT_PASSPHRASE, compared in constant time, a few attempts per minute per session).

Plain values in, plain values out: the dashboard reads who the visitor is (`st.user`, the session) into an
`Identity`, and `EditPolicy.decide` says whether that visitor may edit, under which author name, and why not.

Authors: a signed-in editor saves as their e-mail address (unique and what EMBSPACE_EDITORS names, where a
display name is not); a passphrase session saves as the name it typed, marked "(passphrase)" because nobody
vouched for it, or as "passphrase editor" when it typed none; locally the typed name, as before.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from embspace import settings
from embspace.settings import EDIT_PASSPHRASE_ENV, EDITORS_ENV, SettingReader

PASSPHRASE_AUTHOR = "passphrase editor"  # a passphrase session that typed no name
PASSPHRASE_MARK = " (passphrase)"  # after a typed name: the name is the visitor's word, not a sign-in
NOT_CONFIGURED = (
    "this hosted server names no editors: its operator lists them by e-mail in "
    f"{EDITORS_ENV} (with sign-in configured) or sets {EDIT_PASSPHRASE_ENV}."
)
SIGN_IN_NOT_CONFIGURED = (
    f"editors are named in {EDITORS_ENV}, but sign-in is not configured: the operator adds an [auth] section "
    "to .streamlit/secrets.toml."
)
ASK_SIGN_IN = "sign in with an editor's account to edit (sidebar, Editing)."
ASK_PASSPHRASE = "enter the lab's passphrase to edit (sidebar, Editing)."


@dataclass(frozen=True)
class Identity:
    """Who the visitor is, as plain values: the signed-in e-mail (None: not signed in), whether this session
    gave the right passphrase, and the name it typed (the free-text display name, if any)."""

    email: str | None = None
    passphrase_accepted: bool = False
    typed_name: str | None = None


@dataclass(frozen=True)
class EditDecision:
    """Whether this visitor may edit; the author their saves carry (None: anonymous); a sentence saying why
    (when refused: how to get access). `names_itself`: the author comes from a typed name (show the field)."""

    allowed: bool
    author: str | None
    reason: str
    names_itself: bool = False


@dataclass(frozen=True)
class EditPolicy:
    """The operator's editing rule. `sign_in_available`: Streamlit authentication is configured (the dashboard
    knows: an [auth] section in secrets.toml). The passphrase is kept out of repr (never logged)."""

    hosted: bool = False
    editors: frozenset[str] = frozenset()  # lower-cased e-mail addresses
    passphrase: str | None = field(default=None, repr=False)
    sign_in_available: bool = False

    @classmethod
    def from_settings(cls, reader: SettingReader, *, sign_in_available: bool = False) -> EditPolicy:
        """The policy from EMBSPACE_HOSTED, EMBSPACE_EDITORS and EMBSPACE_EDIT_PASSPHRASE."""
        return cls(
            hosted=settings.hosted(reader),
            editors=settings.editors(reader),
            passphrase=settings.edit_passphrase(reader),
            sign_in_available=sign_in_available,
        )

    @property
    def offers_sign_in(self) -> bool:
        """Hosted, with sign-in configured and editors named: the sidebar offers "Sign in to edit"."""
        return self.hosted and self.sign_in_available and bool(self.editors)

    @property
    def offers_passphrase(self) -> bool:
        """Hosted, a passphrase set, and no sign-in offered (sign-in, where it works, is the stronger way)."""
        return self.hosted and self.passphrase is not None and not self.offers_sign_in

    def check_passphrase(self, given: str) -> bool:
        """Whether `given` is the passphrase, compared in constant time (False when none is set)."""
        if self.passphrase is None:
            return False
        return hmac.compare_digest(given.encode("utf-8"), self.passphrase.encode("utf-8"))

    def decide(self, identity: Identity) -> EditDecision:
        """May this visitor edit, as whom, and why (not)."""
        if not self.hosted:
            return EditDecision(True, identity.typed_name or None, "editing is open on a local app.", names_itself=True)
        email = (identity.email or "").strip().lower()
        if email and email in self.editors:
            return EditDecision(True, email, f"signed in as {email}, an editor.")
        if identity.passphrase_accepted and self.offers_passphrase:
            name = (identity.typed_name or "").strip()
            author = f"{name}{PASSPHRASE_MARK}" if name else PASSPHRASE_AUTHOR
            return EditDecision(True, author, "the lab's passphrase was given in this session.", names_itself=True)
        return EditDecision(False, None, self.refusal(email))

    def refusal(self, email: str) -> str:
        """Why a hosted visitor may not edit, saying how to get access."""
        if not self.editors and self.passphrase is None:
            return NOT_CONFIGURED
        if self.offers_sign_in:
            return f"signed in as {email}, who is not an editor here; {ASK_SIGN_IN}" if email else ASK_SIGN_IN
        if self.offers_passphrase:
            return ASK_PASSPHRASE
        return SIGN_IN_NOT_CONFIGURED


@dataclass
class AttemptLimiter:
    """At most `max_attempts` passphrase attempts in any `window_s` seconds (a sliding window), per session.

    Mutable on purpose: one lives in each session's state. `clock` is injectable for tests."""

    max_attempts: int = 5
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    attempts: list[float] = field(default_factory=list)

    def wait_s(self) -> float:
        """Seconds until another attempt is allowed (0.0: now)."""
        now = self.clock()
        self.attempts = [t for t in self.attempts if now - t < self.window_s]
        if len(self.attempts) < self.max_attempts:
            return 0.0
        return self.window_s - (now - self.attempts[0])

    def attempt(self) -> bool:
        """Count one attempt if the window allows it; False (nothing counted) when over the limit."""
        if self.wait_s() > 0:
            return False
        self.attempts.append(self.clock())
        return True
