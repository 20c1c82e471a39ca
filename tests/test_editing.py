"""embspace.editing: who may edit a hosted deployment, the passphrase check and the attempt limiter."""

from __future__ import annotations

import pytest

from embspace import settings
from embspace.editing import (
    ASK_PASSPHRASE,
    ASK_SIGN_IN,
    NOT_CONFIGURED,
    PASSPHRASE_AUTHOR,
    AttemptLimiter,
    EditPolicy,
    Identity,
)
from embspace.settings import SettingReader

EDITORS = {"EMBSPACE_HOSTED": "1", "EMBSPACE_EDITORS": "Ada@Lab.org, bob@lab.org\n carol@lab.org"}
PASSPHRASE = {"EMBSPACE_HOSTED": "1", "EMBSPACE_EDIT_PASSPHRASE": "grüne Tür 42"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_editors_are_split_on_commas_and_whitespace_and_lower_cased():
    assert settings.editors(SettingReader.of(EDITORS)) == {"ada@lab.org", "bob@lab.org", "carol@lab.org"}
    assert settings.editors(SettingReader.of({}, {"EMBSPACE_EDITORS": ["X@Y.org", " "]})) == {"x@y.org"}
    assert settings.editors(SettingReader.of({})) == frozenset()
    assert settings.edit_passphrase(SettingReader.of({})) is None


def test_locally_everyone_edits_under_the_typed_name_whatever_is_configured():
    policy = EditPolicy.from_settings(SettingReader.of({"EMBSPACE_EDITORS": "ada@lab.org"}))
    decision = policy.decide(Identity(typed_name="Ola"))
    assert (decision.allowed, decision.author, decision.names_itself) == (True, "Ola", True)
    assert policy.decide(Identity()).author is None  # anonymous, as before


def test_hosted_with_nothing_configured_is_read_only_for_all_naming_both_settings():
    decision = EditPolicy.from_settings(SettingReader.of({"EMBSPACE_HOSTED": "1"})).decide(
        Identity(email="ada@lab.org", passphrase_accepted=True, typed_name="Ada")
    )
    assert not decision.allowed and decision.author is None and decision.reason == NOT_CONFIGURED
    assert "EMBSPACE_EDITORS" in decision.reason and "EMBSPACE_EDIT_PASSPHRASE" in decision.reason


def test_a_signed_in_editor_edits_as_their_address_in_any_case():
    policy = EditPolicy.from_settings(SettingReader.of(EDITORS), sign_in_available=True)
    decision = policy.decide(Identity(email="ADA@lab.org", typed_name="someone else"))
    assert (decision.allowed, decision.author, decision.names_itself) == (True, "ada@lab.org", False)
    assert policy.offers_sign_in and not policy.offers_passphrase


def test_visitors_and_signed_in_strangers_are_told_to_sign_in_with_an_editors_account():
    policy = EditPolicy.from_settings(SettingReader.of(EDITORS), sign_in_available=True)
    visitor = policy.decide(Identity(typed_name="Ada"))
    stranger = policy.decide(Identity(email="eve@elsewhere.org"))
    assert not visitor.allowed and visitor.reason == ASK_SIGN_IN
    assert not stranger.allowed and "eve@elsewhere.org, who is not an editor" in stranger.reason
    assert "sign in with an editor's account" in stranger.reason


def test_editors_without_sign_in_configured_say_what_the_operator_lacks():
    decision = EditPolicy.from_settings(SettingReader.of(EDITORS)).decide(Identity())
    assert not decision.allowed and "[auth]" in decision.reason


def test_the_passphrase_unlocks_editing_under_a_marked_name_or_passphrase_editor():
    policy = EditPolicy.from_settings(SettingReader.of(PASSPHRASE))
    assert policy.offers_passphrase and not policy.offers_sign_in
    refused = policy.decide(Identity(typed_name="Ola"))
    assert not refused.allowed and refused.reason == ASK_PASSPHRASE
    named = policy.decide(Identity(passphrase_accepted=True, typed_name=" Ola "))
    assert (named.allowed, named.author, named.names_itself) == (True, "Ola (passphrase)", True)
    assert policy.decide(Identity(passphrase_accepted=True)).author == PASSPHRASE_AUTHOR


def test_sign_in_where_it_works_replaces_the_passphrase():
    """With sign-in configured and editors named, a passphrase session is not an editor (one way in)."""
    policy = EditPolicy.from_settings(SettingReader.of({**EDITORS, **PASSPHRASE}), sign_in_available=True)
    assert not policy.offers_passphrase
    assert not policy.decide(Identity(passphrase_accepted=True)).allowed


def test_check_passphrase_is_exact_and_false_when_none_is_set():
    policy = EditPolicy.from_settings(SettingReader.of(PASSPHRASE))
    assert policy.check_passphrase("grüne Tür 42")
    assert not any(policy.check_passphrase(given) for given in ("grüne tür 42", "grüne Tür 42 ", "", "grune Tur 42"))
    assert not EditPolicy(hosted=True).check_passphrase("")


def test_the_passphrase_never_shows_in_the_policys_repr():
    policy = EditPolicy.from_settings(SettingReader.of(PASSPHRASE))
    assert "grüne" not in repr(policy) and "grüne" not in str(policy)


def test_the_limiter_allows_five_attempts_per_sliding_minute():
    clock = Clock()
    limiter = AttemptLimiter(clock=clock)
    for _ in range(5):  # one every 10 s
        assert limiter.attempt()
        clock.now += 10
    assert not limiter.attempt() and limiter.wait_s() == pytest.approx(10.0)  # the first leaves at 1060
    clock.now += 9.5
    assert not limiter.attempt() and limiter.wait_s() == pytest.approx(0.5)
    clock.now += 0.5  # the first attempt leaves the window, the other four are still in it
    assert limiter.attempt() and not limiter.attempt()
    clock.now += 61
    assert limiter.wait_s() == 0.0 and limiter.attempt()


def test_refused_attempts_are_not_counted():
    clock = Clock()
    limiter = AttemptLimiter(max_attempts=2, window_s=10, clock=clock)
    limiter.attempt(), limiter.attempt()
    for _ in range(20):
        assert not limiter.attempt()
    assert len(limiter.attempts) == 2
    clock.now += 10
    assert limiter.attempt()


def test_the_settings_snapshot_holds_no_passphrase():
    reader = SettingReader.of({"EMBSPACE_EDIT_PASSPHRASE": "open sesame 42"})
    snapshot = settings.snapshot(reader)
    assert "open sesame 42" not in repr(snapshot)
    assert snapshot != settings.snapshot(SettingReader.of({"EMBSPACE_EDIT_PASSPHRASE": "another one"}))
