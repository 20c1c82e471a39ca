"""The shared sidebar: which model, which embedding, how many rows, which tokens a table may show.

The entry point (`app.py`) draws it once per run, before the page, and shares its ViewSettings
with the page (dashboard/state.py). Every setting except the corpus upload is part of the page
address (see urlstate).
"""

from __future__ import annotations

import streamlit as st

from dashboard import cache, corpus_view, tokenizer_view, urlstate
from dashboard.state import ModelChoice, ViewSettings
from embspace import ALPHABETS, DEFAULT_MODEL, EmbeddingSpaceModel, EmbspaceError, ModelInfo, PairFilter, VocabFilter
from embspace.hosting import HostingPolicy
from embspace.model import EMBEDDING_CHOICES, MODEL_PRESETS, CheckpointError, UnsupportedArchitecture
from embspace.settings import WEIGHT_BUDGET_ENV

DEFAULT_K = 30
MAX_K = 500

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
    token_rules = token_rule_widgets(model)
    pair_filter = pair_filter_widgets()
    corpus_ids, corpus_name = corpus_filter(model)
    vocab_filter = VocabFilter(**token_rules, allowed_ids=corpus_ids)
    kept = int(model.vocab_mask(vocab_filter).sum())
    sidebar.metric("Tokens kept by the filters", f"{kept:,} of {model.shape.vocab_size:,}")
    if kept == 0:
        sidebar.warning("No token passes these filters: loosen them to see any table.")
    sidebar.caption(
        "Every setting above is in the page address (a corpus by its digest): copy the URL to share this view."
    )
    top_n = int(st.session_state.get(corpus_view.TOP_N_KEY) or 0) if corpus_ids is not None else 0
    return ViewSettings(model, int(k), vocab_filter, pair_filter, negative, corpus_name, top_n or None)


def address_checkboxes(boxes: dict[str, tuple[str, str | None]]) -> dict[str, bool]:
    """One sidebar checkbox per `{key: (label, help)}`, unticked by default and part of the page address."""
    return {
        key: urlstate.widget(st.sidebar.checkbox, label, key=key, default=False, help=help)
        for key, (label, help) in boxes.items()
    }


def token_rule_widgets(model: EmbeddingSpaceModel) -> dict:
    """Sidebar widgets for which tokens a table may show; VocabFilter's arguments except the corpus.

    With "letters and digits" on, a caption under the alphabet says what the tokenizer does to its letters."""
    ticked = address_checkboxes(TOKEN_CHECKBOXES)
    alphabet = urlstate.widget(
        st.sidebar.selectbox,
        "Alphabet",
        key="alphabet",
        default="latin",
        options=sorted(ALPHABETS),
        disabled=not ticked["alnum"],
    )
    if ticked["alnum"]:
        st.sidebar.caption(tokenizer_view.alphabet_note(model, alphabet))
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


def corpus_filter(model: EmbeddingSpaceModel) -> tuple[frozenset[int] | None, str | None]:
    """Sidebar corpus upload (kept by digest, named in the address): (its token ids, its name), or (None, None)."""
    return corpus_view.corpus_filter(model, hosting_policy())


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
