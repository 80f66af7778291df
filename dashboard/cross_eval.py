"""Test a finished run on another dataset (Runs): does a model trained on synthetic voices understand real ones?

The one evaluation (:func:`kwscore.evaluation.evaluate`) on the clips the run's classes ask for
(:func:`kwscore.labels.task_dataset`, as ``kwscore eval RUN --data ROOT`` reads them), with a progress
bar; the result stays in the session next to the run's own test accuracy.
"""

from __future__ import annotations

import streamlit as st

from dashboard import datasets, plots, run_views
from kwscore.errors import KwsError
from kwscore.evaluation import evaluate, load_run_model, no_keyword_text
from kwscore.labels import display_label, task_dataset
from kwscore.recipes import is_synthetic

SUBSETS = {"testing": "its testing split", "all": "all its clips"}


def own_data(info) -> str:
    """The dataset the run trained on ("" when its config does not say)."""
    return str((info.config or {}).get("data") or "")


def choices(info) -> dict[str, str]:
    """Dataset root -> label: every dataset on offer, the run's own first."""
    own = own_data(info)
    out = {own: f"{run_views.dataset_name(own)} (trained on it)"} if own else {}
    for entry in datasets.entries():
        if entry.available and str(entry.root) not in out:
            out[str(entry.root)] = entry.label
    return out


def show(info) -> None:
    """The panel: pick a dataset and its clips, test, then the accuracy next to the run's own test split."""
    options = choices(info)
    if not options:
        st.caption("No dataset to test on.")
        return
    # recorded speech first: what a model trained on the synthetic voices has not heard
    others = sorted((r for r in options if r != own_data(info)), key=is_synthetic)
    c1, c2, c3 = st.columns([1.6, 1, 0.9], vertical_alignment="bottom")
    root = c1.selectbox("Dataset", list(options), index=list(options).index(others[0]) if others else 0,
                        format_func=options.get, key=f"xeval_data_{info.run_id}")  # fmt: skip
    subset = c2.radio("Clips", list(SUBSETS), format_func=SUBSETS.get, horizontal=True, key=f"xeval_subset_{info.run_id}")
    key = f"xeval_result_{info.run_id}_{root}_{subset}"
    if c3.button("Test on it", icon=":material/fact_check:", key=f"xeval_go_{info.run_id}", width="stretch"):
        bar = st.progress(0.0, text="Reading the clips…")
        try:
            model, transform, labels, config = load_run_model(info.path)
            dataset = task_dataset([root], None if subset == "all" else subset, labels, int(config.get("seed") or 0))
            report = evaluate(model, dataset, transform, labels,
                              progress=lambda done, total: bar.progress(done / total, text=f"Testing: {done:,} of {total:,} clips"))  # fmt: skip
        except (KwsError, OSError) as exc:
            bar.empty()
            st.error(f"This run cannot be tested on {options[root]}: {exc}")
            return
        bar.empty()
        st.session_state[key] = {k: report[k] for k in ("accuracy", "n_total", "labels", "confusion", "per_class_accuracy",
                                                        "per_class_total", "no_keyword")}  # fmt: skip
    result = st.session_state.get(key)
    if result is None:
        st.caption(f"The same as `kwscore eval {info.run_id} --data {root} --subset {subset}`. Trained on "
                   "synthetic voices? Test it on real ones (*speech-commands-real*, or the full download): the gap "
                   "between the two figures is what a synthetic test split does not tell you.")  # fmt: skip
        return
    m1, m2 = st.columns(2)
    m1.metric("On its own test split", f"{100 * info.test_accuracy:.1f} %" if info.test_accuracy is not None else "–")
    m2.metric(f"On {options[root]}", f"{100 * result['accuracy']:.1f} %",
              None if info.test_accuracy is None else f"{100 * (result['accuracy'] - info.test_accuracy):+.1f} points",
              help=f"{result['n_total']:,} clips: {SUBSETS[subset]}.")  # fmt: skip
    names = [display_label(label) for label in result["labels"]]
    a, b = st.columns([1.1, 1], gap="medium")
    a.plotly_chart(plots.confusion_matrix(result["confusion"], names), key=f"xeval_confusion_{info.run_id}")
    b.plotly_chart(
        plots.per_class_accuracy({display_label(k): v for k, v in result["per_class_accuracy"].items()},
                                 {display_label(k): v for k, v in result["per_class_total"].items()},
                                 result["accuracy"], height=460),
        key=f"xeval_per_class_{info.run_id}",
    )  # fmt: skip
    if result.get("no_keyword"):
        st.caption(no_keyword_text(result["no_keyword"]))
