"""Who may edit in this session (annotations, tours): `current()` for any page, and the sidebar's "Editing" block
on a hosted deployment ("Sign in to edit" where Streamlit authentication is configured, else the lab's passphrase).

The rule is `embspace.editing.EditPolicy`; this module only reads the visitor into an `Identity`: `st.user`
(signed in when `is_logged_in`), whether this session gave the passphrase, and the display name it typed. The
session keeps a flag, never the passphrase.
"""

from __future__ import annotations

import math

import streamlit as st

from dashboard import cache
from embspace.editing import AttemptLimiter, EditDecision, EditPolicy, Identity
from embspace.settings import SettingReader, snapshot

AUTHOR_KEY = "display_name"  # the free-text display name (local mode, passphrase sessions)
PASSPHRASE_OK_KEY = "_edit_passphrase_ok"
LIMITER_KEY = "_edit_attempts"
PASSPHRASE_INPUT_KEY = "_edit_passphrase"
MESSAGE_KEY = "_edit_message"


def sign_in_available() -> bool:
    """Streamlit authentication is configured: secrets.toml has an [auth] section (st.login needs it)."""
    return bool(cache.secrets_now().get("auth"))


def policy() -> EditPolicy:
    """The operator's editing policy, parsed once per change of the settings (and of [auth]'s presence)."""
    reader = cache.operator_settings()
    return _policy(snapshot(reader), sign_in_available(), reader)


@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs={SettingReader: lambda reader: None})
def _policy(key: tuple, sign_in: bool, reader: SettingReader) -> EditPolicy:
    return EditPolicy.from_settings(reader, sign_in_available=sign_in)


def signed_in_email() -> str | None:
    """The signed-in visitor's e-mail (`st.user.email` while `st.user.is_logged_in`), else None.

    An address the provider marks unverified (`email_verified` false) counts as none: anyone can claim one.
    Tests set it through AppTest's own `at.user` (Streamlit's testing hook), not a double."""
    user = st.user
    if not user.get("is_logged_in") or user.get("email_verified") is False:
        return None
    return str(user.get("email") or "").strip() or None


def identity() -> Identity:
    """This session's visitor, as plain values."""
    state = st.session_state
    return Identity(
        email=signed_in_email(),
        passphrase_accepted=bool(state.get(PASSPHRASE_OK_KEY)),
        typed_name=(state.get(AUTHOR_KEY) or "").strip() or None,
    )


def current() -> EditDecision:
    """May this session edit, as whom, and why not. Decided on each call (the policy is cached; reading the
    identity is a few dictionary look-ups), so a widget callback sees the session as it is at that moment."""
    return policy().decide(identity())


def limiter() -> AttemptLimiter:
    """This session's passphrase attempts (5 per sliding minute)."""
    return st.session_state.setdefault(LIMITER_KEY, AttemptLimiter())


def try_passphrase() -> None:
    """The passphrase form's callback: count the attempt, check it, clear the field; a message for the run."""
    state = st.session_state
    given = state.get(PASSPHRASE_INPUT_KEY) or ""
    state[PASSPHRASE_INPUT_KEY] = ""  # the typed passphrase does not stay in the session
    attempts = limiter()
    if not attempts.attempt():
        state[MESSAGE_KEY] = f"Too many attempts: wait {math.ceil(attempts.wait_s())} s."
    elif policy().check_passphrase(given):
        state[PASSPHRASE_OK_KEY] = True
        state[MESSAGE_KEY] = "Editing unlocked for this session."
    else:
        state[MESSAGE_KEY] = "That is not the passphrase."


def sidebar() -> None:
    """The sidebar's "Editing" block, on a hosted deployment only (locally nothing changes)."""
    rule = policy()
    if not rule.hosted:
        return
    decision = current()
    box = st.sidebar.container(border=True)
    box.markdown("**Editing**")
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        (box.success if decision.allowed else box.warning)(message)
    if decision.allowed:
        box.caption(f"You may edit; saves carry the name “{decision.author}”.")
    else:
        box.caption(f"Read-only: {decision.reason}")
    if rule.offers_sign_in:
        sign_in_buttons(box)
    elif rule.offers_passphrase and not decision.allowed:
        with box.form("edit_passphrase_form", border=False):
            st.text_input("The lab's passphrase", type="password", key=PASSPHRASE_INPUT_KEY)
            st.form_submit_button("Unlock editing", icon=":material/lock_open:", on_click=try_passphrase)


def sign_in_buttons(box) -> None:
    """ "Sign in to edit" (st.login, the [auth] provider) or "Sign out" for a signed-in visitor."""
    if st.user.get("is_logged_in"):
        box.button("Sign out", key="edit_sign_out", on_click=st.logout)
    else:
        box.button("Sign in to edit", key="edit_sign_in", icon=":material/login:", on_click=st.login)
