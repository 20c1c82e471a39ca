"""Who may edit, through AppTest: hosted mode refuses edits without sign-in or the lab's passphrase and accepts
them with it; locally nothing changes.

The signed-in visitor is set with AppTest's own testing hook, `at.user` (Streamlit 1.67 copies it into
`st.user` for each run), and `[auth]` with `at.secrets`: no test double of the identity function.
"""

from __future__ import annotations

import pytest
from app_harness import APP, TIMEOUT, app_fixture, assert_clean, fresh_server_fixture, label_popovers  # noqa: F401
from streamlit.testing.v1 import AppTest

from dashboard import edit_access
from embspace.annotations import AnnotationKey, AnnotationStore
from embspace.editing import ASK_PASSPHRASE, ASK_SIGN_IN, NOT_CONFIGURED, PASSPHRASE_AUTHOR
from embspace.model.sources import DEFAULT_MODEL
from embspace.tours import Tour, TourStop, TourStore

PASSPHRASE = "lab meeting 7"
VIEW = {"layer": "2", "head": "5", "k": "3", "pairs": "3"}
KEY = AnnotationKey(DEFAULT_MODEL, "", "vo", 2, 5)
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32}


@pytest.fixture(name="data_dir", autouse=True)
def data_dir_fixture(monkeypatch, tmp_path):
    """Hosted, annotations read-write by setting, no editors or passphrase unless the test sets them."""
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "embspace-data"))
    monkeypatch.setenv("EMBSPACE_HOSTED", "1")
    monkeypatch.setenv("EMBSPACE_CACHE_DIR", str(tmp_path / "app-cache"))
    for name in ("EMBSPACE_ANNOTATIONS", "EMBSPACE_EDITORS", "EMBSPACE_EDIT_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "embspace-data"


def signed_in_app(user: dict, **query) -> AppTest:
    """The W_VO page with Streamlit authentication configured and `user` as st.user (AppTest's hook)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH
    at.user = user
    at.query_params.update(query)
    at.switch_page("pages/vo.py")
    return at.run()


def save_in_editor(at: AppTest, label: str) -> AppTest:
    next(t for t in at.text_input if t.label == "Label").set_value(label)
    next(b for b in at.button if b.label == "Save label").click()
    return at.run()


def unlock(at: AppTest, passphrase: str) -> AppTest:
    at.sidebar.text_input(key=edit_access.PASSPHRASE_INPUT_KEY).set_value(passphrase)
    next(b for b in at.sidebar.button if b.label == "Unlock editing").click()
    return at.run()


def read_only_notice(at: AppTest) -> str:
    return next(i.value for i in at.main.info if "read-only" in i.value)


def test_hosted_without_editors_or_passphrase_is_read_only_naming_both_settings(app, data_dir):
    AnnotationStore.open(data_dir).save(KEY, "name mover", "")
    at = app("pages/vo.py", **VIEW)
    assert_clean(at)
    assert any(m.value == ":material/label: **name mover**" for m in at.markdown)  # labels still show
    assert not label_popovers(at) and NOT_CONFIGURED in read_only_notice(at)
    assert not [t for t in at.text_input if t.label == "Your name (optional)"]  # no free-text author


def test_the_passphrase_unlocks_editing_and_saves_carry_the_typed_name(app, data_dir, monkeypatch):
    monkeypatch.setenv("EMBSPACE_EDIT_PASSPHRASE", PASSPHRASE)
    at = app("pages/vo.py", **VIEW)
    assert_clean(at)
    assert not label_popovers(at) and ASK_PASSPHRASE in read_only_notice(at)
    assert not [t for t in at.text_input if t.label == "Your name (optional)"]
    at = unlock(at, "lab meeting 8")
    assert any("not the passphrase" in w.value for w in at.sidebar.warning)
    assert not label_popovers(at)
    at = unlock(at, PASSPHRASE)
    assert_clean(at)
    assert any("Editing unlocked" in s.value for s in at.sidebar.success)
    assert at.session_state[edit_access.PASSPHRASE_INPUT_KEY] == ""  # the typed passphrase is not kept
    at.sidebar.text_input(key="display_name").set_value("Ola")
    at = save_in_editor(at.run(), "copies names")
    assert_clean(at)
    stored = AnnotationStore.open(data_dir).get(KEY)
    assert (stored.label, stored.author) == ("copies names", "Ola (passphrase)")


def test_a_passphrase_session_without_a_name_saves_as_passphrase_editor(app, data_dir, monkeypatch):
    monkeypatch.setenv("EMBSPACE_EDIT_PASSPHRASE", PASSPHRASE)
    at = save_in_editor(unlock(app("pages/vo.py", **VIEW), PASSPHRASE), "first label")
    assert_clean(at)
    assert AnnotationStore.open(data_dir).get(KEY).author == PASSPHRASE_AUTHOR


def test_wrong_passphrases_are_counted_and_the_sixth_attempt_in_a_minute_is_refused(app, data_dir, monkeypatch):
    """Five wrong tries, then even the right passphrase is refused with the wait; nothing unlocks."""
    monkeypatch.setenv("EMBSPACE_EDIT_PASSPHRASE", PASSPHRASE)
    at = app("pages/vo.py", **VIEW)
    for attempt in range(5):
        at = unlock(at, f"guess {attempt}")
        assert any("not the passphrase" in w.value for w in at.sidebar.warning)
    assert len(at.session_state[edit_access.LIMITER_KEY].attempts) == 5
    at = unlock(at, PASSPHRASE)
    (warning,) = at.sidebar.warning
    assert warning.value.startswith("Too many attempts: wait ") and warning.value.endswith(" s.")
    assert 0 < int(warning.value.split("wait ")[1].split(" s")[0]) <= 60
    assert not label_popovers(at) and edit_access.PASSPHRASE_OK_KEY not in at.session_state


def test_a_signed_in_editor_edits_as_their_address_with_no_name_field(data_dir, monkeypatch, fresh_server):
    monkeypatch.setenv("EMBSPACE_EDITORS", "ada@lab.org, bob@lab.org")
    at = signed_in_app({"is_logged_in": True, "email": "Ada@Lab.org", "name": "Ada L."}, **VIEW)
    assert_clean(at)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    assert not [t for t in at.text_input if t.label == "Your name (optional)"]
    (popover,) = label_popovers(at)
    assert not [t for t in popover.text_input if t.label == "Your name (optional)"]
    at = save_in_editor(at, "copies names")
    assert_clean(at)
    assert AnnotationStore.open(data_dir).get(KEY).author == "ada@lab.org"


def test_visitors_and_strangers_see_sign_in_and_cannot_edit(data_dir, monkeypatch, fresh_server):
    monkeypatch.setenv("EMBSPACE_EDITORS", "ada@lab.org")
    monkeypatch.setenv("EMBSPACE_EDIT_PASSPHRASE", PASSPHRASE)  # sign-in configured: no passphrase field
    visitor = signed_in_app({}, **VIEW)
    assert_clean(visitor)
    assert [b.label for b in visitor.sidebar.button] == ["Sign in to edit"]
    assert not label_popovers(visitor) and ASK_SIGN_IN in read_only_notice(visitor)
    assert not [t for t in visitor.sidebar.text_input if t.key == edit_access.PASSPHRASE_INPUT_KEY]
    stranger = signed_in_app({"is_logged_in": True, "email": "eve@elsewhere.org"}, **VIEW)
    assert_clean(stranger)
    assert not label_popovers(stranger) and "eve@elsewhere.org, who is not an editor" in read_only_notice(stranger)
    assert [b.label for b in stranger.sidebar.button] == ["Sign out"]
    unverified = signed_in_app({"is_logged_in": True, "email": "ada@lab.org", "email_verified": False}, **VIEW)
    assert not label_popovers(unverified) and ASK_SIGN_IN in read_only_notice(unverified)
    assert [b.label for b in unverified.sidebar.button] == ["Sign out"]


def test_the_annotations_page_tells_visitors_why_they_cannot_import(app, data_dir):
    at = app("pages/annotations.py")
    assert_clean(at)
    assert any(NOT_CONFIGURED in i.value for i in at.info)


def test_locally_the_editor_and_the_name_field_are_as_before(app, data_dir, monkeypatch):
    """No hosted flag: no Editing block, the form and the free-text name, even with editors configured."""
    monkeypatch.delenv("EMBSPACE_HOSTED")
    monkeypatch.setenv("EMBSPACE_EDITORS", "ada@lab.org")
    at = app("pages/vo.py", **VIEW)
    assert_clean(at)
    assert not [b for b in at.sidebar.button if b.label in ("Sign in to edit", "Unlock editing")]
    assert any(t.label == "Your name (optional)" for t in at.sidebar.text_input)
    at.sidebar.text_input(key="display_name").set_value("Ola")
    at = save_in_editor(at.run(), "local label")
    assert AnnotationStore.open(data_dir).get(KEY).author == "Ola"


def test_hosted_tours_are_saved_only_after_the_passphrase_and_carry_its_author(app, data_dir, monkeypatch):
    monkeypatch.setenv("EMBSPACE_EDIT_PASSPHRASE", PASSPHRASE)
    tour = Tour("Copying", DEFAULT_MODEL, (TourStop("vo", 5, 7, "A copying head."),))
    at = app("pages/tours.py")
    at.session_state["_tour_draft"] = tour
    at.run()
    assert_clean(at)
    assert any("Saving tours is off here" in i.value and ASK_PASSPHRASE in i.value for i in at.main.info)
    assert not [b for b in at.button if b.label == "Save"]
    at = unlock(at, PASSPHRASE)
    at.text_input(key="_tour_name").set_value("copying")
    at = next(b for b in at.button if b.label == "Save").click().run()
    assert_clean(at)
    assert TourStore.open(data_dir).get("copying") == (tour, 1)
    assert TourStore.open(data_dir).list()[0].author == PASSPHRASE_AUTHOR
