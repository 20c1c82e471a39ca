"""Issue 22 through AppTest: a corpus that lasts (reload, link, missing), same-tab links, honest search and
tokenizer notes, the corpus's token list."""

from __future__ import annotations

import hashlib

from app_harness import (  # noqa: F401
    app_fixture,
    assert_clean,
    download_data,
    downloads_fixture,
    fresh_server_fixture,
    kept_tokens,
)
from app_links import click_row

CORPUS = "the cat sat\non the mat\na cat\n"
DIGEST = hashlib.sha256(CORPUS.encode()).hexdigest()


def upload(at, text: str = CORPUS, name: str = "corpus.txt"):
    return at.file_uploader(key="corpus_file").set_value((name, text.encode(), "text/plain")).run()


def test_a_reload_reopens_the_corpus_from_the_address(app):
    at = upload(app("pages/neurons.py", k="3", points="4"))
    assert_clean(at)
    kept = kept_tokens(at)
    assert kept == 6 and at.query_params["corpus"] == DIGEST[:16]
    reloaded = app("pages/neurons.py", **at.query_params)  # F5 or a copied link: a new session, the same address
    assert_clean(reloaded)
    assert kept_tokens(reloaded) == kept
    assert not reloaded.warning
    assert any("kept on this server" in c.value for c in reloaded.sidebar.caption)


def test_an_address_naming_a_missing_corpus_says_so_and_computes_nothing(app):
    at = app("pages/vo.py", corpus="0123456789abcdef", corpus_field="body", corpus_top_n="50")
    assert not at.exception
    assert len(at.warning) >= 1
    message = at.warning[0].value
    assert "Corpus not loaded" in message and "0123456789abcdef" in message
    assert "`body`" in message and "50 most common" in message
    assert not at.dataframe and not at.title  # the page is not drawn without its corpus
    assert at.query_params["corpus"] == "0123456789abcdef"  # the address still says what was asked

    at.button(key="corpus_continue_without").click().run()
    assert_clean(at)
    assert "corpus" not in at.query_params and at.dataframe
    assert kept_tokens(at) > 1000


def test_uploading_the_missing_corpus_again_restores_the_view(app):
    at = app("pages/neurons.py", corpus=DIGEST[:16], k="3", points="4")
    assert "Corpus not loaded" in at.warning[0].value
    at.file_uploader(key="corpus_file_again").set_value(("again.txt", CORPUS.encode(), "text/plain")).run()
    assert_clean(at)
    assert not at.warning and kept_tokens(at) == 6
    assert at.query_params["corpus"] == DIGEST[:16]


def test_a_search_hit_opens_in_the_same_session_with_the_corpus(app):
    at = upload(app("pages/search.py", q="cat", limit="2", k="4"))
    assert_clean(at)
    click_row(at, "hits_0", 0)  # one click on the row's box
    assert_clean(at)
    assert at.title[0].value != "Token search"
    assert kept_tokens(at) == 6 and at.query_params["corpus"] == DIGEST[:16]


def test_search_flags_words_outside_the_corpus_and_says_what_rank_means(app):
    at = upload(app("pages/search.py", q="cat king", limit="2"))
    assert_clean(at)
    assert [h.value for h in at.subheader][:2] == ["“cat”", "“king”"]
    assert any("`king` is not in your corpus" in w.value for w in at.warning)
    assert len(at.dataframe) == 1 and set(at.dataframe[0].value["token"]) == {"cat"}  # king is not ranked
    rank = next(m.value for m in at.markdown if "**Rank** counts only" in m.value)
    assert "the 6 tokens the sidebar keeps" in rank and "your corpus" in rank and "rank 1 is common" in rank


def test_search_says_when_a_word_is_split_and_groups_its_hits(app):
    at = app("pages/search.py", q="pieszo king", limit="1")
    assert_clean(at)
    assert any("**pieszo** is split into 3 tokens" in i.value for i in at.info)
    assert not any("**king** is split" in i.value for i in at.info)
    assert len(at.dataframe) == 2  # one table per word
    assert any("lowercases and strips accents" in c.value for c in at.caption)


def test_the_alphabet_filter_and_the_start_page_say_what_the_tokenizer_does(app):
    at = app("pages/about.py", alnum="true", alphabet="polish")
    assert_clean(at)
    note = next(c.value for c in at.sidebar.caption if "lowercases" in c.value)
    assert "ó→o" in note and "ż→z" in note and "ł stays" in note
    assert any("“Król żółw” becomes “krol zołw”" in m.value for m in at.markdown)
    unticked = app("pages/about.py", alphabet="polish")
    assert not any("ó→o" in c.value for c in unticked.sidebar.caption)  # only under "letters and digits"


def test_the_corpus_tokens_can_be_listed_and_downloaded_with_counts(app, downloads):
    at = upload(app("pages/about.py"))
    at.toggle(key="corpus_list").set_value(True).run()
    assert_clean(at)
    table = at.sidebar.dataframe[0].value
    assert list(table.columns) == ["token", "token_id", "count"]
    assert list(table["token"][:2]) == ["the", "cat"] or list(table["token"][:2]) == ["cat", "the"]
    assert list(table["count"]) == [2, 2, 1, 1, 1, 1]
    csv = download_data(at, downloads, "corpus_tokens_csv")
    assert csv.splitlines()[0] == "token,token_id,count" and len(csv.splitlines()) == 7


def test_a_hosted_server_refuses_an_upload_over_its_limit_and_keeps_nothing(app, monkeypatch, tmp_path):
    monkeypatch.setenv("EMBSPACE_HOSTED", "1")
    monkeypatch.setenv("EMBSPACE_MAX_UPLOAD_BYTES", "20")
    at = upload(app("pages/about.py"))
    assert not at.exception
    assert any("Corpus not used" in e.value and "uploads up to 20 bytes" in e.value for e in at.error)
    assert "corpus" not in at.query_params and kept_tokens(at) > 1000
    corpora = tmp_path / "embspace-data" / "corpora"
    assert not corpora.exists() or not any(p.suffix == ".txt" for p in corpora.iterdir())


def test_a_hosted_server_keeps_an_upload_within_its_corpus_budget(app, monkeypatch, tmp_path):
    monkeypatch.setenv("EMBSPACE_HOSTED", "1")
    at = upload(app("pages/about.py"))
    assert_clean(at)
    assert (tmp_path / "embspace-data" / "corpora" / f"{DIGEST}.txt").read_text() == CORPUS
    assert at.query_params["corpus"] == DIGEST[:16]
