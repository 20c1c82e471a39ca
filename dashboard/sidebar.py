"""The shared sidebar: which model, which embedding, how many rows, which tokens a table may show.

The entry point (`app.py`) draws it once per run, before the page, and shares its ViewSettings
with the page (dashboard/state.py). Every setting except the corpus upload is part of the page
address (see urlstate).
"""

from __future__ import annotations

import hashlib

import streamlit as st

from dashboard import cache, urlstate
from dashboard.cache import CorpusUpload
from dashboard.state import ModelChoice, ViewSettings
from embspace import ALPHABETS, DEFAULT_MODEL, EmbeddingSpaceModel, EmbspaceError, ModelInfo, PairFilter, VocabFilter
from embspace.hosting import HostingPolicy
from embspace.model import EMBEDDING_CHOICES, MODEL_PRESETS, CheckpointError, UnsupportedArchitecture
from embspace.settings import WEIGHT_BUDGET_ENV
from embspace.vocab import corpus_fields, infer_format, iter_corpus_texts

DEFAULT_K = 30
MAX_K = 500
CORPUS_TYPES = ["txt", "jsonl", "csv", "tsv"]

MODEL_HELP = (
    "A preset, or type a Hugging Face hub id (e.g. `EleutherAI/pythia-70m`) or the path of a local "
    "model directory and press Enter. Only the first preset is bundled and works offline."
)
MODEL_HELP_HOSTED = "This server opens the models in this list" + " (and, if its operator allows it, hub ids)."
REVISION_HELP = "A branch, tag or commit."
EMBEDDING_HELP = (
    "input: the word embeddings. output: the LM head (unembedding). auto: the LM head when the checkpoint "
    "has one, else the input embedding. input-output (untied models): rows through the input embedding, "
    "columns through the LM head."
)
# The token filters' checkboxes, {URL key: (label, help)}.
TOKEN_CHECKBOXES = {
    "ascii": ("ASCII only", None),
    "alnum": ("Letters and digits only", "Tokens made only of the alphabet's letters and digits."),
}
SPECIAL_TOKEN_CHECKBOX = {"special": ("Keep special tokens", "[CLS], <|endoftext|>, [unused5], padding rows.")}
PAIR_CHECKBOXES = {
    "same": ("Exclude identical pairs", "Drop pairs of the same token up to case and word marker (kot / Kot / ##kot)."),
    "fuzzy": (
        "Exclude near-identical pairs",
        "Also drop inflections and spelling variants: a shared stem of 3+ letters or a similarity ratio ≥ 80.",
    ),
}

_FAILED = "_failed_model"  # session key: (ModelChoice, message) of the last model that failed to open
_CORPUS = "_corpus"  # session key: CorpusUpload, kept across page switches (uploads are not in the URL)


def draw() -> ViewSettings | None:
    """The whole sidebar; returns its settings, None if the model failed to open (the sidebar says why)."""
    choice = model_choice()
    model = open_chosen_model(choice)
    if model is None:
        return None
    with st.sidebar.expander(f"What was opened: {model.info.shape.architecture}", expanded=False):
        st.markdown(model_card_markdown(model.info))
    return view_settings(model)


def hosting_policy() -> HostingPolicy:
    """The operator's hosting policy (EMBSPACE_HOSTED and friends, from the environment or secrets.toml)."""
    return cache.hosting_policy()


def model_choice() -> ModelChoice:
    """Sidebar widgets for the model: a preset, a typed hub id or local path; revision; embedding."""
    sidebar = st.sidebar
    sidebar.header("Model")
    policy = hosting_policy()
    source = urlstate.widget(
        sidebar.selectbox,
        "Model",
        key="model",
        default=DEFAULT_MODEL,
        options=policy.presets(MODEL_PRESETS),
        accept_new_options=True,  # a typed source the policy refuses gets a message, not a silent swap
        help=MODEL_HELP_HOSTED if policy.hosted else MODEL_HELP,
    )
    embedding = urlstate.widget(
        sidebar.radio,
        "Embedding matrix E",
        key="embedding",
        default="auto",
        options=EMBEDDING_CHOICES,
        horizontal=True,
        help=EMBEDDING_HELP,
    )
    budget = policy.weight_budget_bytes  # EMBSPACE_WEIGHT_BUDGET_GB, read with the rest of the policy
    with sidebar.expander("Advanced"):
        revision = urlstate.widget(
            st.text_input, "Hub revision", key="revision", default="", placeholder="main", help=REVISION_HELP
        )
        st.caption(
            f"Weight budget: {budget / 1e9:.2f} GB; bigger hub models are refused before download "
            f"(the server's {WEIGHT_BUDGET_ENV} sets it)."
        )
    return ModelChoice((source or "").strip(), revision.strip() or None, embedding, budget)


def open_chosen_model(choice: ModelChoice) -> EmbeddingSpaceModel | None:
    """The chosen model (progress while it opens), or None after showing why it could not be opened."""
    failed = st.session_state.get(_FAILED)
    if failed is not None and failed[0] == choice:
        message = failed[1]  # the same choice failed before: no new download attempt on every rerun
    else:
        try:
            return cache.load_model(choice, hosting_policy())
        except (EmbspaceError, UnsupportedArchitecture, CheckpointError) as err:
            message = str(err)
        except Exception as err:  # hub, tokenizer and file errors come in many types; one line helps most
            first_line = (str(err).strip().splitlines() or [""])[0]
            message = f"{type(err).__name__}: {first_line}"
        st.session_state[_FAILED] = (choice, message)
    st.error(f"Could not open **{choice.source}**: {message}", icon=":material/error:")
    st.button("Try again", on_click=st.session_state.pop, args=(_FAILED, None))
    return None


def view_settings(model: EmbeddingSpaceModel) -> ViewSettings:
    """Sidebar widgets for k, the sign and the token filters (corpus included)."""
    sidebar = st.sidebar
    sidebar.header("Tokens shown")
    k = urlstate.widget(
        sidebar.number_input, "Rows per table (k)", key="k", default=DEFAULT_K, min_value=1, max_value=MAX_K, step=5
    )
    negative = urlstate.widget(
        sidebar.checkbox, "Most negative instead of most positive", key="negative", default=False
    )
    token_rules = token_rule_widgets()
    pair_filter = pair_filter_widgets()
    corpus_ids = corpus_filter(model)
    vocab_filter = VocabFilter(**token_rules, allowed_ids=corpus_ids)
    kept = int(model.vocab_mask(vocab_filter).sum())
    sidebar.metric("Tokens kept by the filters", f"{kept:,} of {model.shape.vocab_size:,}")
    if kept == 0:
        sidebar.warning("No token passes these filters: loosen them to see any table.")
    sidebar.caption(
        "Every setting above, except a corpus upload, is in the page address: copy the URL to share this view."
    )
    upload: CorpusUpload | None = st.session_state.get(_CORPUS)
    corpus_name = upload.name if corpus_ids is not None and upload is not None else None
    return ViewSettings(model, int(k), vocab_filter, pair_filter, negative, corpus_name)


def address_checkboxes(boxes: dict[str, tuple[str, str | None]]) -> dict[str, bool]:
    """One sidebar checkbox per `{key: (label, help)}`, unticked by default and part of the page address."""
    return {
        key: urlstate.widget(st.sidebar.checkbox, label, key=key, default=False, help=help)
        for key, (label, help) in boxes.items()
    }


def token_rule_widgets() -> dict:
    """Sidebar widgets for which tokens a table may show; VocabFilter's arguments except the corpus."""
    ticked = address_checkboxes(TOKEN_CHECKBOXES)
    alphabet = urlstate.widget(
        st.sidebar.selectbox,
        "Alphabet",
        key="alphabet",
        default="latin",
        options=sorted(ALPHABETS),
        disabled=not ticked["alnum"],
    )
    ticked |= address_checkboxes(SPECIAL_TOKEN_CHECKBOX)  # below the alphabet, which belongs to "alnum"
    return {
        "only_ascii": ticked["ascii"],
        "only_alnum": ticked["alnum"],
        "alphabet": alphabet,
        "exclude_special": not ticked["special"],
    }


def pair_filter_widgets() -> PairFilter:
    """Sidebar widgets for which (row, column) pairs a head's table may show."""
    st.sidebar.caption("Token pairs (W_VO, W_QK):")
    ticked = address_checkboxes(PAIR_CHECKBOXES)
    return PairFilter(exclude_same=ticked["same"], exclude_fuzzy=ticked["fuzzy"])


def _remember_upload() -> None:
    """Keep the uploaded bytes in the session: the uploader forgets them when st.switch_page runs."""
    upload = st.session_state.get("corpus_file")
    if upload is None:
        st.session_state[_CORPUS] = None
    else:
        data = upload.getvalue()
        st.session_state[_CORPUS] = CorpusUpload(upload.name, data, hashlib.sha256(data).hexdigest())


def corpus_filter(model: EmbeddingSpaceModel) -> frozenset[int] | None:
    """Sidebar corpus upload; the token ids it uses (or its N most common), None without a corpus."""
    with st.sidebar.expander("Restrict to a corpus", expanded=st.session_state.get(_CORPUS) is not None):
        st.file_uploader(
            "Corpus (.txt, .jsonl, .csv)",
            type=CORPUS_TYPES,
            key="corpus_file",
            on_change=_remember_upload,
            help="Only tokens that occur in this text are shown. .txt: one document per line; "
            ".jsonl / .csv: pick the field or column holding the text.",
        )
        st.caption("Uploads stay in this browser session and are not part of the page address.")
        upload: CorpusUpload | None = st.session_state.get(_CORPUS)
        if upload is None:
            return None
        try:
            hosting_policy().check_upload(len(upload.data))  # uploads live in memory only, never on disk
            fmt = infer_format(upload.name)
            fields = corpus_fields(upload.data, fmt=fmt)
            field = None
            if fields:
                if st.session_state.get("corpus_field") not in fields:
                    st.session_state["corpus_field"] = _text_field(upload.data, fmt, fields)
                field = st.selectbox("Text field / column", fields, key="corpus_field", persist_state="session")
            top_n = st.number_input(
                "Only the N most common tokens (0: all)",
                min_value=0,
                step=100,
                key="corpus_top_n",
                persist_state="session",
            )
            ids = cache.corpus_ids(model, upload, fmt, field, int(top_n) or None)
        except EmbspaceError as err:
            st.error(f"Corpus not used: {err}")
            return None
        st.caption(f"{upload.name}: {len(ids):,} distinct tokens.")
        return ids


def _text_field(data: bytes, fmt: str, fields: list[str]) -> str:
    """The field to start with: "text" if there is one, else the first whose first value is text."""
    for field in sorted(fields, key=lambda name: name != "text"):
        try:
            next(iter_corpus_texts(data, fmt=fmt, field=field), None)
        except EmbspaceError:
            continue
        return field
    return fields[0]


def model_card_markdown(info: ModelInfo) -> str:
    """A small table of what was opened: sizes, and which embedding E is."""
    shape = info.shape
    if info.embedding == "input":
        embedding = "input (word embeddings)" + (", tied to the LM head" if info.tied else "")
    elif info.embedding == "input-output":
        embedding = "rows: input (word embeddings); columns: output (LM head)"
    else:
        embedding = "output (LM head)" + (", tied to the input embedding" if info.tied else ", separate from the input")
    heads = f"{shape.n_heads} (d_head {shape.d_head})"
    if shape.n_kv_heads != shape.n_heads:
        heads += f", {shape.n_kv_heads} key/value groups"
    rows = [
        ("Source", f"`{info.source}`" + (f" @ {info.revision}" if info.revision else "") + f" ({info.origin})"),
        ("Architecture", shape.architecture),
        ("Layers", shape.n_layers),
        ("Heads per layer", heads),
        ("d_model", shape.d_model),
        ("d_ff", f"{shape.d_ff}" + (" (gated MLP)" if shape.gated_mlp else "")),
        ("Vocabulary", f"{shape.vocab_size:,}"),
        ("Embedding E", embedding),
        ("Weights on disk", f"{info.weight_bytes / 1e6:,.0f} MB"),
    ]
    return "| Model | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
