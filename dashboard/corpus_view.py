"""The sidebar's corpus filter: an upload kept on the server by its content digest, named in the page address.

The address carries `corpus=<first 16 hex of the sha256>` (with `corpus_field` and `corpus_top_n`), so a
reload or a copied link reopens the same filter from the store (embspace.vocab.CorpusStore, in the data
directory). When the address names a corpus the server does not hold, the page says so at the top, offers the
upload again and draws nothing else: results are never computed without the corpus they were asked with.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from dashboard import cache, urlstate
from dashboard.cache import CorpusUpload
from embspace import EmbeddingSpaceModel, EmbspaceError, settings
from embspace.hosting import HostingPolicy
from embspace.vocab import DIGEST_PREFIX, CorpusStore, corpus_digest, corpus_fields, infer_format, iter_corpus_texts

CORPUS_PARAM = "corpus"  # the address's digest prefix; "" without a corpus
FIELD_KEY = "corpus_field"
TOP_N_KEY = "corpus_top_n"
UPLOADER_KEY = "corpus_file"
AGAIN_KEY = "corpus_file_again"  # the uploader offered when the address's corpus is missing
CORPUS_TYPES = ["txt", "jsonl", "csv", "tsv"]
UPLOAD_HELP = (
    "Only tokens that occur in this text are shown. .txt: one document per line; "
    ".jsonl / .csv: pick the field or column holding the text."
)
_CORPUS = "_corpus"  # session key: the CorpusUpload in use (its bytes, so pages need not reread the store)
_ERROR = "_corpus_error"  # session key: why the last upload was not used


def corpus_store() -> CorpusStore:
    """The server's kept corpora: DATA_DIR/corpora, within EMBSPACE_CORPUS_BYTES."""
    reader = cache.operator_settings()
    return CorpusStore(settings.corpus_store_dir(reader), settings.corpus_store_bytes(reader))


def remember_upload(key: str, policy: HostingPolicy) -> None:
    """on_change of an uploader: keep the file (in the store and the session) and name it in the address."""
    file = st.session_state.get(key)
    st.session_state[_ERROR] = None
    if file is None:
        forget()
        return
    data = file.getvalue()
    try:
        policy.check_upload(len(data))
        kept = corpus_store().put(data, file.name)
    except (EmbspaceError, OSError) as err:
        st.session_state[_ERROR] = str(err)
        forget()
        return
    st.session_state[_CORPUS] = CorpusUpload(file.name, data, corpus_digest(data))
    # Only a kept corpus goes in the address: a link must never name what this server cannot reopen.
    st.session_state[CORPUS_PARAM] = kept.short if kept is not None else ""


def forget() -> None:
    """No corpus: out of the session and the address."""
    st.session_state[_CORPUS] = None
    st.session_state[CORPUS_PARAM] = ""


def chosen_upload() -> CorpusUpload | str | None:
    """The corpus in effect: the session's upload, else the one the address names from the store; the
    address's digest (a str) when the store does not hold it; None without a corpus."""
    wanted = urlstate.url_param(CORPUS_PARAM, "")
    upload: CorpusUpload | None = st.session_state.get(_CORPUS)
    if not wanted:
        return upload  # None, or an upload too big to keep (this session only)
    if upload is not None and upload.digest.startswith(wanted):
        return upload
    stored = corpus_store().find(wanted)
    if stored is None:
        return wanted
    upload = CorpusUpload(stored.name, stored.read_bytes(), stored.digest)
    st.session_state[_CORPUS] = upload
    return upload


def missing_corpus(wanted: str, policy: HostingPolicy) -> None:
    """The page when its address names a corpus this server does not hold: say so, offer the upload, stop."""
    field, top_n = st.query_params.get(FIELD_KEY), st.query_params.get(TOP_N_KEY)
    what = "only the tokens that occur in that corpus" + (f" (text field `{field}`)" if field else "")
    if top_n and top_n != "0":
        what += f", its {top_n} most common"
    st.warning(
        f"**Corpus not loaded.** This address filters every table by the uploaded corpus `{wanted}` ({what}), "
        "which this server does not hold: it was removed to make room, or uploaded on another server. "
        "Nothing is computed without it: upload the same file again, or continue without the corpus.",
        icon=":material/warning:",
    )
    st.file_uploader(
        "Upload the corpus again", type=CORPUS_TYPES, key=AGAIN_KEY, on_change=remember_upload, args=(AGAIN_KEY, policy)
    )
    st.button("Continue without the corpus", on_click=forget, key="corpus_continue_without")
    st.stop()  # before any publish: the address keeps naming the corpus until the person decides


def corpus_filter(model: EmbeddingSpaceModel, policy: HostingPolicy) -> tuple[frozenset[int] | None, str | None]:
    """The sidebar's corpus expander: (the token ids it keeps, the corpus's name), (None, None) without one."""
    chosen = chosen_upload()
    if isinstance(chosen, str):
        missing_corpus(chosen, policy)
    with st.sidebar.expander("Restrict to a corpus", expanded=chosen is not None):
        st.file_uploader(
            "Corpus (.txt, .jsonl, .csv)",
            type=CORPUS_TYPES,
            key=UPLOADER_KEY,
            on_change=remember_upload,
            args=(UPLOADER_KEY, policy),
            help=UPLOAD_HELP,
        )
        if st.session_state.get(_ERROR):
            st.error(f"Corpus not used: {st.session_state[_ERROR]}")
        if chosen is None:
            st.caption("An upload is kept on this server by its content, and the page address names it.")
            return None, None
        try:
            ids = corpus_settings(model, chosen)
        except EmbspaceError as err:
            st.error(f"Corpus not used: {err}")
            return None, None
    return ids, chosen.name


def corpus_settings(model: EmbeddingSpaceModel, upload: CorpusUpload) -> frozenset[int]:
    """The field and top-N widgets (in the address), the corpus's caption and token list; the ids kept."""
    fmt = infer_format(upload.name)
    fields = corpus_fields(upload.data, fmt=fmt)
    field = None
    if fields:
        first = _text_field(upload.data, fmt, fields)
        field = urlstate.widget(st.selectbox, "Text field / column", key=FIELD_KEY, default=first, options=fields)
    top_n = urlstate.widget(
        st.number_input, "Only the N most common tokens (0: all)", key=TOP_N_KEY, default=0, min_value=0, step=100
    )
    counts = cache.corpus_counts(model, upload, fmt, field)
    ids = cache.corpus_ids(model, upload, fmt, field, int(top_n) or None)
    kept = st.session_state.get(CORPUS_PARAM)
    where = (
        f"kept on this server as `{upload.digest[:DIGEST_PREFIX]}`" if kept else "this session only (too big to keep)"
    )
    st.caption(f"{upload.name}: {len(ids):,} distinct tokens; {where}.")
    if st.session_state.get(UPLOADER_KEY) is None:  # reopened from the address: the uploader is empty
        st.button("Remove the corpus", on_click=forget, key="corpus_remove")
    token_list(model, counts, upload)
    return ids


def token_counts_frame(model: EmbeddingSpaceModel, counts: Counter) -> pd.DataFrame:
    """token, token_id, count of every token the corpus uses, most common first (ties: lower id first, the
    order "the N most common" keeps)."""
    present = sorted(((int(i), int(c)) for i, c in counts.items() if c > 0), key=lambda item: (-item[1], item[0]))
    ids = [i for i, _ in present]
    return pd.DataFrame(
        {
            "token": [model.vocab.display(i) if i < model.vocab.size else str(i) for i in ids],
            "token_id": ids,
            "count": [c for _, c in present],
        }
    )


def token_list(model: EmbeddingSpaceModel, counts: Counter, upload: CorpusUpload) -> None:
    """A toggle that lists the corpus's tokens with their counts, and their CSV download."""
    if not st.toggle("List its tokens with their counts", key="corpus_list"):
        return
    frame = token_counts_frame(model, counts)
    st.dataframe(frame, hide_index=True, height=240)
    st.download_button(
        "Download the token counts (CSV)",
        frame.to_csv(index=False),
        file_name=f"corpus-tokens-{upload.digest[:DIGEST_PREFIX]}.csv",
        mime="text/csv",
        key="corpus_tokens_csv",
    )


def _text_field(data: bytes, fmt: str, fields: list[str]) -> str:
    """The field to start with: "text" if there is one, else the first whose first value is text."""
    for field in sorted(fields, key=lambda name: name != "text"):
        try:
            next(iter_corpus_texts(data, fmt=fmt, field=field), None)
        except EmbspaceError:
            continue
        return field
    return fields[0]
